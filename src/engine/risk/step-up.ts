import { STEP_UP_LEVELS, type SessionContext, type StepUp, type StepUpLevel } from '../types.js'
import type { RiskPolicy } from '../policy/files/risk.js'

export const levelRank = (level: StepUpLevel) => STEP_UP_LEVELS.indexOf(level)

/** The level a score calls for, if any. */
export function levelFor(score: number, policy: RiskPolicy): StepUpLevel | undefined {
  const t = policy.thresholds
  if (score >= t.high) return 'high'
  if (score >= t.medium) return 'medium'
  if (score >= t.low) return 'low'
  return undefined
}

/** What the identity provider must do for a level, with the reference's extra methods for weak devices and risky places. */
export function stepUpFor(level: StepUpLevel, policy: RiskPolicy, facts: { deviceTrust: number; locationRisk: number }): StepUp {
  const spec = policy.stepUp.levels[level]
  const methods = [...spec.methods]
  if (level === 'high' && facts.deviceTrust < policy.stepUp.adminApprovalBelowTrust && !methods.includes('admin_approval')) methods.push('admin_approval')
  if (level === 'medium' && facts.locationRisk > policy.stepUp.emailAboveLocationRisk && !methods.includes('email')) methods.push('email')
  return { level, methods, maxAge: spec.maxAge, acrValues: [...spec.acrValues] }
}

/**
 * A session satisfies a step-up when its last active authentication is recent enough and used a
 * method the level, or a higher level, accepts (RFC 8176 amr values, mapped per method in risk.yaml).
 */
export function satisfies(session: SessionContext | undefined, stepUp: StepUp, now: number, policy: RiskPolicy): boolean {
  if (session?.authTime === undefined || !session.amr || session.amr.length === 0) return false
  const ageSeconds = now / 1000 - session.authTime
  // A little future skew is tolerated; an authentication from the future beyond it is not evidence.
  if (ageSeconds > stepUp.maxAge || ageSeconds < -60) return false
  // A method good enough for a higher level is good enough for this one: a hardware key answers a TOTP prompt.
  const stronger = STEP_UP_LEVELS.filter((l) => levelRank(l) >= levelRank(stepUp.level)).flatMap((l) => policy.stepUp.levels[l].methods)
  const accepted = new Set([...stepUp.methods, ...stronger].flatMap((m) => policy.stepUp.amr[m] ?? []))
  return session.amr.some((value) => accepted.has(value))
}
