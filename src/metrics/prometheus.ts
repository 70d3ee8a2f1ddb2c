import { Counter, Gauge, Histogram, collectDefaultMetrics, Registry } from 'prom-client'
import type { PdpMetrics } from '../engine/ports.js'
import { FALLBACK_CODES } from '../engine/policy/indexed-evaluator.js'
import type { PolicySource } from '../engine/policy/policy-source.js'
import type { PolicyEvaluator } from '../engine/policy/evaluator.js'
import type { ResponderMetrics } from '../response/responder.js'
import type { AuditLogHealth } from '../audit/audit-log.js'

/** Engines a PolicyEvaluator reports; a closed set, so it can be a label. */
const EVALUATOR_ENGINES = ['indexed', 'casbin'] as const

export interface PrometheusMetrics extends PdpMetrics {
  registry: Registry
  /** Follows a policy source's reloads and rule count. */
  watchPolicy(source: PolicySource): void
  /** Security events and the response actions they set off. */
  response: ResponderMetrics
  webhook(result: 'delivered' | 'failed'): void
  /** Reads the decision log's health at each scrape. */
  watchDecisionLog(health: () => AuditLogHealth): void
  /** Whether the store answered its last round trip or ping. */
  storeHealth(ok: boolean): void
  /** One HTTP request: its route pattern (never the raw path), method and status. */
  httpRequest(route: string, method: string, statusCode: number, seconds: number): void
}

/**
 * Prometheus series in a registry of their own, so that several apps in one process (tests)
 * never share or double-register series. Label values come from closed sets (verdicts, reason
 * codes, levels): no subject, tenant or resource ever becomes a label.
 */
export function createPrometheusMetrics(build: { version: string } = { version: 'unknown' }): PrometheusMetrics {
  const registry = new Registry()
  new Gauge({ name: 'pdp_build_info', help: 'Always 1; the labels say what runs', labelNames: ['version', 'node'] as const, registers: [registry] }).set(
    { version: build.version, node: process.version },
    1,
  )
  const httpRequests = new Counter({
    name: 'pdp_http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status class',
    labelNames: ['route', 'method', 'status_class'] as const,
    registers: [registry],
  })
  const httpDuration = new Histogram({
    name: 'pdp_http_request_duration_seconds',
    help: 'Time from request to response, by route pattern',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  })
  collectDefaultMetrics({ register: registry })
  // prom-client's per-type gauges stay; their sums are gauges named like counters, which promtool rejects.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name)
  const decisions = new Counter({
    name: 'pdp_decisions_total',
    help: 'Decisions made, by verdict and deciding reason',
    labelNames: ['decision', 'reason'] as const,
    registers: [registry],
  })
  const duration = new Histogram({
    name: 'pdp_decision_duration_seconds',
    help: 'Time to decide, inside the engine',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [registry],
  })
  const riskScore = new Histogram({
    name: 'pdp_risk_score',
    help: 'Risk scores of assessed requests (0-100)',
    buckets: [0, 10, 25, 40, 50, 65, 80, 90, 100],
    registers: [registry],
  })
  const stepUps = new Counter({
    name: 'pdp_step_up_total',
    help: 'Step-up challenges issued, by level',
    labelNames: ['level'] as const,
    registers: [registry],
  })
  const storeUp = new Gauge({ name: 'pdp_store_up', help: '1 when the state store answered its last round trip or readiness ping, else 0', registers: [registry] })
  const storeErrors = new Counter({ name: 'pdp_store_errors_total', help: 'State store round trips that failed or timed out', registers: [registry] })
  const storeDuration = new Histogram({
    name: 'pdp_store_duration_seconds',
    help: 'State store round trips',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [registry],
  })
  const reloads = new Counter({
    name: 'pdp_policy_reloads_total',
    help: 'Policy reload attempts, by result',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  const rules = new Gauge({ name: 'pdp_policy_rules', help: 'Policy and role lines in the active policy', registers: [registry] })
  const events = new Counter({ name: 'pdp_security_events_total', help: 'Security events received, by type', labelNames: ['type'], registers: [registry] })
  // Rule names come from response.yaml, a closed set the operator controls.
  const actions = new Counter({
    name: 'pdp_response_actions_total',
    help: 'Automated response actions taken, by rule and action',
    labelNames: ['rule', 'action'],
    registers: [registry],
  })
  const shadowMismatches = new Counter({
    name: 'pdp_shadow_mismatches_total',
    help: 'Decisions where the shadow (candidate) policy would have answered differently, by active and shadow verdict',
    labelNames: ['from', 'to'],
    registers: [registry],
  })
  const webhooks = new Counter({ name: 'pdp_webhook_deliveries_total', help: 'Webhook deliveries, by result', labelNames: ['result'], registers: [registry] })
  const evaluator = new Gauge({
    name: 'pdp_policy_evaluator',
    help: 'Evaluator answering for the active policy (1), by engine: indexed, or casbin when the indexed one could not take the model',
    labelNames: ['engine'] as const,
    registers: [registry],
  })
  const fallback = new Gauge({
    name: 'pdp_policy_evaluator_fallback',
    help: 'Why node-casbin answers for the active policy instead of the indexed evaluator (1 for the reason; all 0 while the indexed one answers)',
    labelNames: ['reason'] as const,
    registers: [registry],
  })
  const showEngine = (current: PolicyEvaluator) => {
    for (const known of EVALUATOR_ENGINES) evaluator.set({ engine: known }, known === current.engine ? 1 : 0)
    for (const code of FALLBACK_CODES) fallback.set({ reason: code }, code === current.fallbackCode ? 1 : 0)
  }

  return {
    registry,
    decision(o) {
      decisions.inc({ decision: o.verdict, reason: o.reason })
      duration.observe(o.seconds)
      if (o.riskScore !== undefined) riskScore.observe(o.riskScore)
      if (o.stepUpLevel !== undefined) stepUps.inc({ level: o.stepUpLevel })
    },
    shadowMismatch(from, to) {
      shadowMismatches.inc({ from, to })
    },
    storeCall(seconds, ok) {
      storeDuration.observe(seconds)
      storeUp.set(ok ? 1 : 0)
      if (!ok) storeErrors.inc()
    },
    storeHealth(ok) {
      storeUp.set(ok ? 1 : 0)
    },
    httpRequest(route, method, statusCode, seconds) {
      httpRequests.inc({ route, method, status_class: `${Math.floor(statusCode / 100)}xx` })
      httpDuration.observe({ route }, seconds)
    },
    response: {
      event: (type) => events.inc({ type }),
      action: (rule, action) => actions.inc({ rule, action }),
    },
    webhook(result) {
      webhooks.inc({ result })
    },
    watchDecisionLog(health) {
      // Read at scrape time: nothing is added to a decision's path.
      new Gauge({
        name: 'pdp_decision_log_failing',
        help: '1 while the last write to the decision log failed (lines wait and are retried), else 0',
        registers: [registry],
        collect() {
          this.set(health().failing ? 1 : 0)
        },
      })
      new Counter({
        name: 'pdp_decision_log_write_errors_total',
        help: 'Failed writes to the decision log destination',
        registers: [registry],
        collect() {
          this.reset()
          this.inc(health().writeErrors)
        },
      })
      new Counter({
        name: 'pdp_decision_log_dropped_lines_total',
        help: 'Decision log lines dropped because the destination fell 64 MiB behind',
        registers: [registry],
        collect() {
          this.reset()
          this.inc(health().dropped)
        },
      })
    },
    watchPolicy(source) {
      rules.set(source.current.evaluator.ruleCount)
      showEngine(source.current.evaluator)
      reloads.inc({ result: 'success' }, 0)
      reloads.inc({ result: 'failure' }, 0)
      source.on('reload', (result, bundle) => {
        reloads.inc({ result: result.ok ? 'success' : 'failure' })
        rules.set(bundle.evaluator.ruleCount)
        showEngine(bundle.evaluator)
      })
    },
  }
}
