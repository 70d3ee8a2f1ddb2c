import type { ReasonCode, StepUp } from '../engine/types.js'
import { CREDENTIAL_REASONS, invalidTokenChallenge, stepUpChallenge } from '../http/challenge.js'
import type { ClientDecision, ClientReason } from './pdp-client.js'

export interface RefusalBody {
  statusCode: 401 | 403
  error: 'Unauthorized' | 'Forbidden'
  decision: 'deny' | 'step_up'
  /** The deciding reason. */
  reason: ClientReason
  /** For support: the PDP's decision-log line with this id explains the verdict. */
  decisionId: string
  stepUp?: StepUp
}

/** How a service answers a request the PDP did not allow. */
export interface Refusal {
  status: 401 | 403
  headers: Record<string, string>
  body: RefusalBody
}

/**
 * The HTTP answer to a verdict, framework-neutral; undefined for `allow`. A step-up is a 401 with the
 * RFC 9470 challenge, a bad, expired or revoked credential a 401 with RFC 6750 `invalid_token`, and every
 * other deny (the client's own fail-closed deny included) a 403.
 */
export function refusalFor(decision: ClientDecision): Refusal | undefined {
  if (decision.decision === 'allow') return undefined
  const reason: ClientReason = decision.reasons[0] ?? 'no_matching_policy'
  const common = { decision: decision.decision, reason, decisionId: decision.decisionId }
  if (decision.decision === 'step_up' && decision.stepUp) {
    return {
      status: 401,
      headers: { 'www-authenticate': stepUpChallenge(decision.stepUp) },
      body: { statusCode: 401, error: 'Unauthorized', ...common, stepUp: decision.stepUp },
    }
  }
  if (CREDENTIAL_REASONS.has(reason as ReasonCode)) {
    return {
      status: 401,
      headers: { 'www-authenticate': invalidTokenChallenge(reason.replace(/_/g, ' ')) },
      body: { statusCode: 401, error: 'Unauthorized', ...common },
    }
  }
  return { status: 403, headers: {}, body: { statusCode: 403, error: 'Forbidden', ...common } }
}
