import type { SessionContext } from '../types.js'
import type { RiskPolicy } from '../policy/files/risk.js'
import { stepPoints, type SignalResult } from './signal.js'

/** Hours since the last active authentication; a missing session scores as configured. */
export function authAgeSignal(session: SessionContext | undefined, now: number, policy: RiskPolicy): SignalResult {
  if (session?.authTime === undefined) {
    return { signal: { name: 'authAge', value: null, contribution: policy.scoring.noSession, reason: 'no_session', detail: 'no authentication time in the request' } }
  }
  const hours = Math.max(0, (now / 1000 - session.authTime) / 3600)
  const contribution = stepPoints(policy.scoring.authAgeHours, hours, 'above')
  const rounded = Math.round(hours * 100) / 100
  return contribution > 0
    ? { signal: { name: 'authAge', value: rounded, contribution, reason: 'stale_authentication' } }
    : { signal: { name: 'authAge', value: rounded, contribution: 0 } }
}
