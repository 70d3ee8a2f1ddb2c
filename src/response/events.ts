import type { SecurityEventType } from '../engine/security-events.js'

// The event types are the engine's: response.yaml names them.
export { SECURITY_EVENT_TYPES, type SecurityEventType } from '../engine/security-events.js'

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
