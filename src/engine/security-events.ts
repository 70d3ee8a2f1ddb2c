/** Security events the identity provider (or anything that sees logins) reports through POST /events. */
export const SECURITY_EVENT_TYPES = [
  'login_success',
  'login_failure',
  'mfa_success',
  'mfa_failure',
  'logout',
  'password_reset',
  'suspicious_activity',
] as const
export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[number]
