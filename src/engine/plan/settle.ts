import type { PolicyQuery } from '../policy/evaluator.js'
import type { PolicyBundle } from '../policy/bundle.js'
import type { Decision, ReasonCode, RiskAssessment, StepUp, StepUpLevel } from '../types.js'
import { combineVerdict, consultsPolicy, type VerdictInputs } from '../verdict.js'
import { or, type PlanFilter } from './filter.js'

/** What a plan answers for every resource of the type at once. */
export type PlanKind = 'always_allowed' | 'always_denied' | 'conditional' | 'unsupported'

/**
 * The answer to "which resources of this type may the subject act on?": a decision's id, subject, reasons, policy
 * version, risk and step-up (which the allowed resources need first), with the plan's kind in place of a verdict.
 */
export interface Plan extends Pick<Decision, 'decisionId' | 'subject' | 'reasons' | 'policyVersion' | 'stepUp' | 'risk'> {
  plan: PlanKind
  /** For `conditional`: the resources allowed are exactly those that pass it. */
  filter?: PlanFilter
  /** For `unsupported`: the rule (file:line) holding what no filter can express exactly, and why. */
  unsupported?: { rule?: string; reason: string }
}

/** A plan before it is stamped: the kind, the filter and what the gates and the risk engine added. */
export interface PlanOutcome {
  plan: PlanKind
  filter?: PlanFilter
  reasons: ReasonCode[]
  risk?: RiskAssessment
  stepUp?: StepUp
  stepUpLevel?: StepUpLevel
  unsupported?: { rule?: string; reason: string }
}

/**
 * Combines the policy's plan with the gates', the store's and the risk engine's outcomes exactly as a decision
 * combines them with its policy effect: they do not depend on the resource, so what a decision would answer for
 * an allowed resource applies to all of them, and every other resource is denied.
 */
export function settlePlan(bundle: PolicyBundle, query: PolicyQuery, inputs: Omit<VerdictInputs, 'policy'>): PlanOutcome {
  if (!consultsPolicy(inputs.store, inputs.gates)) return { plan: 'always_denied', reasons: combineVerdict(inputs).reasons }
  if (inputs.gates.scopedToResources !== undefined) return { plan: 'unsupported', reasons: ['jit_grant'], unsupported: { reason: inputs.gates.scopedToResources } }
  if (!bundle.planner) return { plan: 'unsupported', reasons: ['policy_error'], unsupported: { reason: 'the active policy was not loaded from policy files' } }
  const policy = bundle.planner.plan(query)
  if ('unsupported' in policy) return { plan: 'unsupported', reasons: ['policy_error'], unsupported: policy.unsupported }
  // A just-in-time permission allows what no rule decides, as in a decision.
  const allowed = inputs.gates.permissionGranted ? or(policy.allowed, policy.undecided) : policy.allowed
  if (allowed === false) return { plan: 'always_denied', reasons: [policy.undecided === true ? 'no_matching_policy' : 'policy_deny'] }
  const outcome = combineVerdict({ ...inputs, policy: 'allow' })
  const result: PlanOutcome = { plan: 'always_denied', reasons: outcome.reasons }
  if (outcome.risk) result.risk = outcome.risk
  if (outcome.verdict === 'deny') return result
  result.plan = allowed === true ? 'always_allowed' : 'conditional'
  if (allowed !== true) result.filter = allowed
  if (outcome.stepUpLevel) result.stepUpLevel = outcome.stepUpLevel
  else if (outcome.stepUp) result.stepUp = outcome.stepUp
  return result
}
