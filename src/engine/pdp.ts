import { noDecisionLog, type DecisionLog, type DecisionLogEntry, type DecisionSource } from './decision-log.js'
import { noMetrics, type PdpMetrics } from './metrics.js'
import { decisionId } from './ids.js'
import type { PolicyBundle } from './policy/bundle.js'
import type { PolicyEnv, PolicyQuery, PolicyResult } from './policy/evaluator.js'
import type { Clock, Decision, DecisionRequest, ReasonCode, Verdict } from './types.js'

export interface PdpComponents {
  /** The active policy; read once per decision so a reload never splits one decision across two policies. */
  policy: { readonly current: PolicyBundle }
  now: Clock
  /** Casbin domain for requests that name no tenant. */
  defaultTenant: string
  decisionLog?: DecisionLog
  metrics?: PdpMetrics
}

export interface DecideOptions {
  /** Evaluate as of this time (epoch ms) instead of the clock's. */
  now?: number
  requestId?: string
  source?: DecisionSource
}

export interface Pdp {
  decide(request: DecisionRequest, options?: DecideOptions): Promise<Decision>
}

function environment(nowMs: number, ip: string | undefined): PolicyEnv {
  const date = new Date(nowMs)
  return { time: Math.floor(nowMs / 1000), hour: date.getUTCHours(), weekday: date.getUTCDay(), ip: ip ?? '' }
}

export function toPolicyQuery(request: DecisionRequest, defaultTenant: string, nowMs: number): PolicyQuery {
  const tenant = request.subject.tenant ?? defaultTenant
  return {
    subject: {
      id: request.subject.id,
      roles: request.subject.roles ?? [],
      tenant,
      attributes: request.subject.attributes ?? {},
    },
    domain: tenant,
    resource: {
      type: request.resource.type,
      id: request.resource.id ?? '',
      attributes: request.resource.attributes ?? {},
    },
    action: request.action,
    env: environment(nowMs, request.context?.ip),
  }
}

const POLICY_OUTCOME: Record<PolicyResult['effect'], { verdict: Verdict; reason: ReasonCode }> = {
  allow: { verdict: 'allow', reason: 'policy_allow' },
  deny: { verdict: 'deny', reason: 'policy_deny' },
  none: { verdict: 'deny', reason: 'no_matching_policy' },
  error: { verdict: 'deny', reason: 'policy_error' },
}

export function createPdp(components: PdpComponents): Pdp {
  const log = components.decisionLog ?? noDecisionLog
  const metrics = components.metrics ?? noMetrics
  return {
    async decide(request, options = {}) {
      const started = performance.now()
      const now = options.now ?? components.now()
      const bundle = components.policy.current
      const explain = request.explain === true
      const query = toPolicyQuery(request, components.defaultTenant, now)
      const result = bundle.evaluator.evaluate(query, explain)
      const outcome = POLICY_OUTCOME[result.effect]
      const decision: Decision = {
        decision: outcome.verdict,
        decisionId: decisionId(now),
        reasons: [outcome.reason],
        policyVersion: bundle.version,
      }
      if (explain) {
        decision.explanation = { effectiveRoles: result.roles ?? [], matchedRules: result.matched, domain: query.domain }
      }
      const latencyMs = performance.now() - started
      metrics.decision({ verdict: decision.decision, reason: decision.reasons[0]!, seconds: latencyMs / 1000 })
      log.write(() => {
        const entry: DecisionLogEntry = { request, decision, time: now, latencyMs }
        if (options.requestId !== undefined) entry.requestId = options.requestId
        if (options.source !== undefined) entry.source = options.source
        return entry
      })
      return decision
    },
  }
}
