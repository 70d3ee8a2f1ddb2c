import { keyPart as part, keyTag as tag } from '../engine/ports.js'

/**
 * Store keys of the identity features, in one place; components are URI-encoded so ids cannot collide. The id a
 * key belongs to is its hash tag (subject, token id, session id, client address): on Redis Cluster a subject's
 * sessions, grants and not-before share the slot of the rest of its state.
 */
export const identityKeys = {
  /** Present while a token id is revoked (until the token would have expired). */
  revokedJti: (jti: string) => `id:rev:jti:${tag(jti)}`,
  /** Present while a session id is revoked. */
  revokedSession: (sid: string) => `id:rev:sid:${tag(sid)}`,
  /** Epoch seconds: tokens issued and sessions authenticated before it are revoked ("log out everywhere"). */
  subjectNotBefore: (subject: string) => `id:nbf:${tag(subject)}`,
  /** Hash: created, lastActivity, device, ip (epoch ms for times). */
  session: (subject: string, sid: string) => `id:sess:${tag(subject)}:${part(sid)}`,
  /** Set of the subject's session ids. */
  sessionIndex: (subject: string) => `id:sessidx:${tag(subject)}`,
  /** Hash: grant id → grant JSON. */
  grants: (subject: string) => `id:grants:${tag(subject)}`,
  /** Counter: failed control-plane authentications from one client address in one window (window start, epoch ms). */
  authFailures: (address: string, windowStart: number) => `id:authfail:${tag(address)}:${windowStart}`,
}
