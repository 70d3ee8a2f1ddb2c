import type { PolicyResult } from './policy/evaluator.js'
import type { GateOutcome } from './ports.js'
import { STEP_UP_LEVELS, type ReasonCode, type RiskAssessment, type StepUp, type StepUpLevel, type Verdict } from './types.js'

/** The gates' outcomes for one item, combined. */
export interface GateVerdict {
  /** The first hard deny, in gate order. */
  deny?: ReasonCode
  /** The highest step-up a gate asks for (the first of equals). */
  stepUp?: { reason: ReasonCode; level: StepUpLevel }
  /** Roles granted for this request only. */
  roles: string[]
  permissionGranted: boolean
  /** What a gate holds for single resources that a plan cannot show (see GateOutcome.scopedToResources). */
  scopedToResources?: string
}

/** Whether the store round trip ran; when it failed, what the service is configured to do about it. */
export type StoreOutcome = 'ok' | 'failed_closed' | 'failed_open'

export interface VerdictInputs {
  store: StoreOutcome
  gates: GateVerdict
  /** The policy's effect; absent when it was not consulted (the store failed closed or a gate denied: see consultsPolicy). */
  policy?: PolicyResult['effect']
  /** The risk engine's outcome for this item; absent without a risk engine or store. */
  risk?: { verdict: Verdict; reasons: readonly ReasonCode[]; assessment: RiskAssessment; stepUp?: StepUp }
}

export interface VerdictOutcome {
  verdict: Verdict
  reasons: ReasonCode[]
  /** The assessment, when the risk engine's outcome took part. */
  risk?: RiskAssessment
  /** The risk engine's step-up. */
  stepUp?: StepUp
  /** A step-up level asked for by a gate or a store failure; it replaces `stepUp` when the PDP can describe it. */
  stepUpLevel?: StepUpLevel
}

export const NO_GATES: GateVerdict = { roles: [], permissionGranted: false }

const POLICY_OUTCOME: Record<PolicyResult['effect'], { verdict: Verdict; reason: ReasonCode }> = {
  allow: { verdict: 'allow', reason: 'policy_allow' },
  deny: { verdict: 'deny', reason: 'policy_deny' },
  none: { verdict: 'deny', reason: 'no_matching_policy' },
  error: { verdict: 'deny', reason: 'policy_error' },
}

const rank = (level: StepUpLevel) => STEP_UP_LEVELS.indexOf(level)
const uniq = <T>(values: T[]): T[] => [...new Set(values)]

/** Combines what every gate said about one item: the first deny, all granted roles, the highest step-up. */
export function combineGates(outcomes: readonly GateOutcome[]): GateVerdict {
  const verdict: GateVerdict = { roles: [], permissionGranted: false }
  const denied = outcomes.find((o) => o.deny)
  if (denied) verdict.deny = denied.deny!
  for (const outcome of outcomes) {
    if (outcome.roles) verdict.roles.push(...outcome.roles)
    if (outcome.permissionGranted) verdict.permissionGranted = true
    if (outcome.scopedToResources !== undefined) verdict.scopedToResources ??= outcome.scopedToResources
    if (outcome.stepUp && (!verdict.stepUp || rank(outcome.stepUp.level) > rank(verdict.stepUp.level))) verdict.stepUp = outcome.stepUp
  }
  return verdict
}

/** The policy is asked unless the answer is already a deny: the store failed closed, or a gate denied. */
export function consultsPolicy(store: StoreOutcome, gates: GateVerdict): boolean {
  return store !== 'failed_closed' && gates.deny === undefined
}

/**
 * The verdict for one item, from the store's, the gates', the policy's and the risk engine's outcomes:
 * a closed store failure or a gate's deny decides alone; otherwise the policy decides (a just-in-time
 * permission stands in for a missing rule); a policy allow then faces a store failed open (step-up),
 * the risk engine's verdict and the gates' step-ups, the strongest ask winning.
 */
export function combineVerdict({ store, gates, policy, risk }: VerdictInputs): VerdictOutcome {
  if (store === 'failed_closed') return { verdict: 'deny', reasons: ['store_unavailable'] }
  if (gates.deny !== undefined) return { verdict: 'deny', reasons: [gates.deny] }
  if (policy === undefined) throw new TypeError('the policy must be consulted unless the store failed closed or a gate denied')

  let outcome = POLICY_OUTCOME[policy]
  const granted: ReasonCode[] = outcome.verdict === 'allow' && gates.roles.length > 0 ? ['jit_grant'] : []
  if (policy === 'none' && gates.permissionGranted) outcome = { verdict: 'allow', reason: 'jit_grant' }
  const result: VerdictOutcome = { verdict: outcome.verdict, reasons: [outcome.reason, ...granted] }
  if (result.verdict !== 'allow') return result
  // Failing open: the policy allowed, but nothing about risk is known, so ask for fresh strong authentication.
  if (store === 'failed_open') return { verdict: 'step_up', reasons: ['store_unavailable', ...result.reasons], stepUpLevel: 'high' }

  if (risk) {
    result.risk = risk.assessment
    result.verdict = risk.verdict
    result.reasons = risk.verdict === 'allow' ? uniq([...result.reasons, ...risk.reasons]) : uniq([...risk.reasons, ...result.reasons])
    if (risk.stepUp) result.stepUp = risk.stepUp
  }
  const asked = gates.stepUp
  if (asked && result.verdict !== 'deny') {
    const current = result.verdict === 'step_up' && result.stepUp ? result.stepUp.level : undefined
    if (!current || rank(asked.level) > rank(current)) {
      result.verdict = 'step_up'
      result.reasons = uniq([asked.reason, ...result.reasons.filter((r) => r !== 'step_up_satisfied')])
      result.stepUpLevel = asked.level
    } else {
      result.reasons = uniq([...result.reasons, asked.reason])
    }
  }
  return result
}
