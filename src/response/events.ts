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

export interface SecurityEvent {
  type: SecurityEventType
  subject: string
  tenant?: string
  ip?: string
  deviceId?: string
  sessionId?: string
  userAgent?: string
  /** When it happened, epoch ms (the receiving time when the reporter did not say). */
  time: number
}
