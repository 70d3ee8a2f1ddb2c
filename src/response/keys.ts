import { keyPart as part, keyTag as tag } from '../engine/ports.js'

/**
 * Store keys of detection and response, in one place; components are URI-encoded so ids cannot collide. The
 * subject or address a key is about is its hash tag, so on Redis Cluster a subject's restrictions and event
 * windows share the slot of the rest of its state, and an address's keys share the address's slot.
 */
export const responseKeys = {
  /** Sorted set of one rule's matching events for a target (subject or IP), scored by time. */
  window: (rule: string, target: string) => `resp:win:${part(rule)}:${tag(target)}`,
  /** Present while a rule that fired for a target is cooling down. */
  fired: (rule: string, target: string) => `resp:fired:${part(rule)}:${tag(target)}`,
  /** JSON Restriction: the subject may not decide anything (account_locked). */
  lock: (subject: string) => `resp:lock:${tag(subject)}`,
  /** JSON Restriction: the account is frozen until an admin lifts it or it runs out (account_frozen). */
  freeze: (subject: string) => `resp:freeze:${tag(subject)}`,
  /** JSON Restriction: every allow needs a fresh step-up made after `since` (security_step_up). */
  stepUp: (subject: string) => `resp:stepup:${tag(subject)}`,
  /** JSON Restriction: requests from this address are denied or stepped up (ip_blocked / suspicious_ip). */
  ip: (ip: string) => `resp:ip:${tag(ip)}`,
}
