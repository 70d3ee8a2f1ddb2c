import type { PdpRisk, RiskInput, RiskOutcome, StoreBatch } from '../ports.js'
import type { ReasonCode, RiskAssessment, RiskSignal, StepUpLevel } from '../types.js'
import { authAgeSignal } from './auth-age.js'
import { prepareBehaviour } from './behaviour.js'
import { prepareDeviceTrust } from './device-trust.js'
import type { GeoLookup } from './geo.js'
import { prepareLocation } from './location.js'
import type { RiskPolicy } from '../policy/files/risk.js'
import { sensitivityOf } from './sensitivity.js'
import { stepPoints } from './signal.js'
import { levelFor, levelRank, satisfies, stepUpFor } from './step-up.js'

/** Reasons that make a remembered step-up on the device insufficient: something changed. */
const FRESH_EVIDENCE_NEEDED: ReadonlySet<ReasonCode> = new Set(['impossible_travel', 'high_risk_location', 'new_country', 'behavior_anomaly'])

/** Reasons that decide on their own, whatever points they carry. */
const HARD_REASONS: ReadonlySet<ReasonCode> = new Set(['country_restricted', 'impossible_travel'])

function assessmentLevel(score: number, policy: RiskPolicy): RiskAssessment['level'] {
  return levelFor(score, policy) ?? 'minimal'
}

/**
 * Scores a request the policy allowed. Every signal reads and updates its state in the decision's
 * shared batch; assess() then combines them: points per signal, times the sensitivity multiplier,
 * capped at 100, mapped to allow / step-up level / deny.
 */
export function createRiskEngine(policy: RiskPolicy, geo: GeoLookup): PdpRisk {
  return {
    prepare(input: RiskInput, batch: StoreBatch) {
      const { facts } = input
      const { subjectId, now, session } = facts
      const device = prepareDeviceTrust(subjectId, facts.device, input.device, now, policy, batch)
      const location = prepareLocation(subjectId, facts.tenant, facts.ip, now, policy, geo, batch)
      const behaviour = prepareBehaviour(subjectId, facts.resourceType, now, policy, batch)

      return {
        assess(target?: { resourceType: string; action: string }): RiskOutcome {
          const dev = device()
          const loc = location()
          const beh = behaviour()
          const age = authAgeSignal(session, now, policy)
          const sensitivity = sensitivityOf(facts.sensitivity, target?.resourceType ?? facts.resourceType, target?.action ?? facts.action, policy)
          const multiplier = policy.sensitivity.multipliers[sensitivity]

          const locationPoints = stepPoints(policy.scoring.locationRisk, loc.risk, 'above')
          const locationSignals = loc.signals.map((s) => (s.name === loc.driver ? { ...s, contribution: locationPoints } : s))
          if (locationPoints > 0 && !locationSignals.some((s) => s.contribution > 0)) {
            locationSignals[0] = { ...locationSignals[0]!, contribution: locationPoints }
          }
          const behaviourPoints = stepPoints(policy.scoring.behaviourAnomaly, beh.anomaly, 'above')
          const behaviourSignal: RiskSignal = { ...beh.signal, contribution: behaviourPoints }
          if (behaviourPoints > 0) behaviourSignal.reason = 'behavior_anomaly'

          const signals: RiskSignal[] = [dev.signal, ...locationSignals, behaviourSignal, age.signal]
          const raw = signals.reduce((sum, s) => sum + s.contribution, 0)
          const score = Math.min(100, Math.round(raw * multiplier))
          // Top-level reasons name what moved the verdict; a signal that added nothing keeps its reason to itself.
          const reasons: ReasonCode[] = []
          for (const s of signals) if (s.reason && (s.contribution > 0 || HARD_REASONS.has(s.reason)) && !reasons.includes(s.reason)) reasons.push(s.reason)
          const assessment: RiskAssessment = { score, level: assessmentLevel(score, policy), sensitivity, multiplier, signals }
          const followUp = (later: StoreBatch, satisfied?: StepUpLevel) => {
            dev.followUp(later, satisfied)
            beh.followUp(later)
          }

          if (loc.restricted) {
            return { verdict: 'deny', reasons: ['country_restricted', ...reasons.filter((r) => r !== 'country_restricted')], assessment, followUp }
          }
          if (score >= policy.thresholds.deny) {
            return { verdict: 'deny', reasons: ['risk_too_high', ...reasons], assessment, followUp }
          }
          const level = levelFor(score, policy)
          if (!level) return { verdict: 'allow', reasons, assessment, followUp }

          const stepUp = stepUpFor(level, policy, { deviceTrust: dev.trust, locationRisk: loc.risk })
          const remembered = dev.remembered
          const rememberedValid =
            remembered !== undefined &&
            levelRank(remembered.level) >= levelRank(level) &&
            now - remembered.at <= policy.stepUp.rememberSeconds * 1000 &&
            !reasons.some((r) => FRESH_EVIDENCE_NEEDED.has(r))
          // After impossible travel, only an authentication that happened after the earlier fix proves who is here now.
          const freshEnough = loc.travelledSince === undefined || (session?.authTime ?? 0) * 1000 > loc.travelledSince
          if (freshEnough && satisfies(session, stepUp, now, policy)) {
            const kept = remembered && rememberedValid && levelRank(remembered.level) > levelRank(level) ? remembered.level : level
            return { verdict: 'allow', reasons: ['step_up_satisfied', ...reasons], assessment, followUp: (later) => followUp(later, kept) }
          }
          if (rememberedValid) {
            return { verdict: 'allow', reasons: ['step_up_satisfied', ...reasons], assessment, followUp }
          }
          return { verdict: 'step_up', reasons: ['step_up_required', ...reasons], assessment, stepUp, followUp }
        },
      }
    },
  }
}
