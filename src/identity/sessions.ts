import type { Gate, GateOutcome, StateStore } from '../engine/ports.js'
import type { IdentityPolicy } from '../engine/policy/files/identity.js'
import { identityKeys } from './keys.js'

export interface SessionRecord {
  id: string
  created: number
  lastActivity: number
  device?: string
  ip?: string
  revoked: boolean
}

/** How long a session may be idle: shorter on less trusted devices, never below the minimum. */
export function idleTimeoutMs(trust: number, policy: IdentityPolicy): number {
  const minutes = Math.max(policy.sessions.idleMinimumMinutes, (policy.sessions.idleBaseMinutes * trust) / 100)
  return minutes * 60_000
}

export const sessionTtlMs = (policy: IdentityPolicy) => policy.sessions.absoluteHours * 3_600_000 + 3_600_000

/**
 * Tracks the sessions the PDP sees per subject and enforces their idle and absolute time-outs.
 * Activity is recorded after the decision, and not for an expired session, so an expired session
 * stays expired until its user authenticates again.
 */
export const sessionGate: Gate = {
  name: 'sessions',
  prepare({ facts, device, bundle }, batch) {
    const sessionId = facts.session?.id
    if (sessionId === undefined) return () => ({})
    const key = identityKeys.session(facts.subjectId, sessionId)
    const record = batch.hGetAll(key)
    return () => {
      const policy = bundle.identity
      const ttl = sessionTtlMs(policy)
      const { now } = facts
      const touch = (created: number): GateOutcome['followUp'] => (later) => {
        const fields: Record<string, string> = { created: String(created), lastActivity: String(now) }
        if (facts.device !== undefined) fields.device = facts.device.id
        if (facts.ip !== undefined) fields.ip = facts.ip
        later.hSet(key, fields, ttl)
        later.sAdd(identityKeys.sessionIndex(facts.subjectId), sessionId, ttl)
      }
      const rec = record.value
      if (rec.created === undefined) return { followUp: touch(now) }
      const created = Number(rec.created)
      const lastActivity = Number(rec.lastActivity ?? rec.created)
      if (now - created > policy.sessions.absoluteHours * 3_600_000) return { deny: 'session_expired' }
      if (now - lastActivity <= idleTimeoutMs(device.trust, policy)) return { followUp: touch(created) }
      const authTime = facts.session?.authTime
      // An authentication after the last activity proves the user is back.
      if (authTime !== undefined && authTime * 1000 > lastActivity) return { followUp: touch(created) }
      if (policy.sessions.onIdle === 'deny') return { deny: 'session_expired' }
      return { stepUp: { reason: 'session_expired', level: policy.sessions.idleStepUpLevel } }
    }
  },
}

/** The subject's sessions, newest activity first (control plane; a second round trip is fine there). */
export async function listSessions(store: StateStore, subject: string): Promise<SessionRecord[]> {
  const index = store.batch()
  const ids = index.sMembers(identityKeys.sessionIndex(subject))
  await index.exec()
  const reads = store.batch()
  const records = ids.value.map((id) => ({
    id,
    fields: reads.hGetAll(identityKeys.session(subject, id)),
    revoked: reads.get(identityKeys.revokedSession(id)),
  }))
  await reads.exec()
  return records
    .filter((r) => r.fields.value.created !== undefined)
    .map((r) => {
      const f = r.fields.value
      const out: SessionRecord = { id: r.id, created: Number(f.created), lastActivity: Number(f.lastActivity ?? f.created), revoked: r.revoked.value !== null }
      if (f.device !== undefined) out.device = f.device
      if (f.ip !== undefined) out.ip = f.ip
      return out
    })
    .sort((a, b) => b.lastActivity - a.lastActivity)
}
