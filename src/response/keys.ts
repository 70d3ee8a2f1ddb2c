import { keyPart as part } from '../engine/ports.js'

/** Store keys of detection and response, in one place; components are URI-encoded so ids cannot collide. */
export const responseKeys = {
  /** Sorted set of one rule's matching events for a target (subject or IP), scored by time. */
  window: (rule: string, target: string) => `resp:win:${part(rule)}:${part(target)}`,
  /** Present while a rule that fired for a target is cooling down. */
  fired: (rule: string, target: string) => `resp:fired:${part(rule)}:${part(target)}`,
  /** JSON Restriction: the subject may not decide anything (account_locked). */
  lock: (subject: string) => `resp:lock:${part(subject)}`,
  /** JSON Restriction: the account is frozen until an admin lifts it or it runs out (account_frozen). */
  freeze: (subject: string) => `resp:freeze:${part(subject)}`,
  /** JSON Restriction: every allow needs a fresh step-up made after `since` (security_step_up). */
  stepUp: (subject: string) => `resp:stepup:${part(subject)}`,
  /** JSON Restriction: requests from this address are denied or stepped up (ip_blocked / suspicious_ip). */
  ip: (ip: string) => `resp:ip:${part(ip)}`,
}
