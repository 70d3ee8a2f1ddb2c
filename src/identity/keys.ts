import { keyPart as part } from '../engine/ports.js'

/** Store keys of the identity features, in one place; components are URI-encoded so ids cannot collide. */
export const identityKeys = {
  /** Present while a token id is revoked (until the token would have expired). */
  revokedJti: (jti: string) => `id:rev:jti:${part(jti)}`,
  /** Present while a session id is revoked. */
  revokedSession: (sid: string) => `id:rev:sid:${part(sid)}`,
  /** Epoch seconds: tokens issued and sessions authenticated before it are revoked ("log out everywhere"). */
  subjectNotBefore: (subject: string) => `id:nbf:${part(subject)}`,
  /** Hash: created, lastActivity, device, ip (epoch ms for times). */
  session: (subject: string, sid: string) => `id:sess:${part(subject)}:${part(sid)}`,
  /** Set of the subject's session ids. */
  sessionIndex: (subject: string) => `id:sessidx:${part(subject)}`,
  /** Hash: grant id → grant JSON. */
  grants: (subject: string) => `id:grants:${part(subject)}`,
  /** Counter: failed control-plane authentications from one client address in one window (window start, epoch ms). */
  authFailures: (address: string, windowStart: number) => `id:authfail:${part(address)}:${windowStart}`,
}
