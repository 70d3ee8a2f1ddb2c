import type { Gate, GateOutcome } from '../engine/ports.js'
import { normaliseIp } from '../engine/ip-address.js'
import { levelRank, satisfies, stepUpFor } from '../engine/risk/step-up.js'
import type { StepUpLevel } from '../engine/types.js'
import { responseKeys } from './keys.js'
import { isActive, readRestriction, type Restriction } from './restrictions.js'

/**
 * Enforces what automated response (or an admin) imposed: lockouts, frozen accounts, blocked or
 * suspicious addresses and forced step-ups. Its reads share the decision's one store round trip.
 */
export const responseGate: Gate = {
  name: 'response',
  prepare({ facts, bundle }, batch) {
    const lock = batch.get(responseKeys.lock(facts.subjectId))
    const freeze = batch.get(responseKeys.freeze(facts.subjectId))
    const stepUp = batch.get(responseKeys.stepUp(facts.subjectId))
    const address = facts.ip === undefined ? undefined : batch.get(responseKeys.ip(normaliseIp(facts.ip)))
    return () => {
      const { now, session } = facts
      if (isActive(readRestriction(lock.value), now)) return { deny: 'account_locked' }
      if (isActive(readRestriction(freeze.value), now)) return { deny: 'account_frozen' }
      const ip = address ? readRestriction(address.value) : undefined
      if (isActive(ip, now) && ip.mode !== 'step_up') return { deny: 'ip_blocked' }

      const risk = bundle.risk
      // A step-up imposed at `since` is met only by a strong authentication made after it:
      // a session that was already fresh when the alarm went off may be the attacker's.
      const met = (restriction: Restriction, wanted: { level: StepUpLevel }) => {
        const authTime = session?.authTime
        if (authTime === undefined || authTime * 1000 < restriction.since) return false
        return satisfies(session, stepUpFor(wanted.level, risk, { deviceTrust: 100, locationRisk: 0 }), now, risk)
      }
      let outcome: GateOutcome = {}
      const ask = (restriction: Restriction | undefined, reason: 'security_step_up' | 'suspicious_ip') => {
        if (!isActive(restriction, now)) return
        const wanted = { reason, level: restriction.level ?? 'high' } as const
        if (met(restriction, wanted)) return
        if (!outcome.stepUp || levelRank(wanted.level) > levelRank(outcome.stepUp.level)) outcome = { stepUp: wanted }
      }
      ask(readRestriction(stepUp.value), 'security_step_up')
      ask(ip, 'suspicious_ip')
      return outcome
    }
  },
}
