import type { VerifiedToken, Gate, StoreBatch } from '../engine/ports.js'
import { identityKeys } from './keys.js'

type Revoked = 'token_revoked' | 'session_revoked'

/**
 * Queues the reads that tell whether a token, or a session without a token, is revoked, and answers
 * once the batch has run. One definition for decisions and for the PDP's own callers, so a revocation
 * stops both alike.
 */
export function prepareRevocationCheck(
  batch: StoreBatch,
  subjectId: string,
  token: VerifiedToken | undefined,
  session?: { id?: string; authTime?: number },
): () => Revoked | undefined {
  const sessionId = token?.session.id ?? session?.id
  const jti = token ? batch.get(identityKeys.revokedJti(token.jti)) : undefined
  const sid = sessionId === undefined ? undefined : batch.get(identityKeys.revokedSession(sessionId))
  const notBefore = batch.get(identityKeys.subjectNotBefore(subjectId))
  return () => {
    if (jti?.value) return 'token_revoked'
    if (sid?.value) return 'session_revoked'
    const cutoff = notBefore.value === null ? undefined : Number(notBefore.value)
    if (cutoff !== undefined) {
      if (token && token.issuedAt < cutoff) return 'token_revoked'
      const authTime = token?.session.authTime ?? session?.authTime
      // Without a token the session's authentication time is the only clock: unknown counts as before.
      if (!token && (authTime === undefined || authTime < cutoff)) return 'session_revoked'
    }
    return undefined
  }
}

/**
 * Instant revocation, checked on every decision in the decision's one store round trip, so every
 * replica sees it at once: a token id, a session id, or everything a subject authenticated before a time.
 */
export const revocationGate: Gate = {
  name: 'revocation',
  prepare({ facts }, batch) {
    const revoked = prepareRevocationCheck(batch, facts.subjectId, facts.token, facts.session)
    return () => {
      const reason = revoked()
      return reason ? { deny: reason } : {}
    }
  },
}

export interface Revocation {
  jti?: { id: string; expiresAt: number }
  sessionId?: string
  subject?: { id: string; before: number }
}

/** Writes a revocation; `ttlMs` bounds how long the marker must outlive what it revokes. */
export function writeRevocation(batch: StoreBatch, revocation: Revocation, now: number, sessionTtlMs: number): void {
  if (revocation.jti) {
    // Kept until the token would have expired anyway (plus a minute of clock tolerance).
    const ttl = Math.max(60_000, revocation.jti.expiresAt * 1000 - now + 60_000)
    batch.set(identityKeys.revokedJti(revocation.jti.id), String(now), ttl)
  }
  if (revocation.sessionId) batch.set(identityKeys.revokedSession(revocation.sessionId), String(now), sessionTtlMs)
  if (revocation.subject) batch.set(identityKeys.subjectNotBefore(revocation.subject.id), String(revocation.subject.before), sessionTtlMs)
}
