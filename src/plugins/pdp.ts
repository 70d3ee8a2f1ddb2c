import fp from 'fastify-plugin'
import { assemblePdp, type AssembleOptions } from '../compose.js'
import type { Pdp } from '../engine/pdp.js'
import type { DecisionTracer } from '../engine/ports.js'
import type { GeoLookup } from '../engine/risk/geo.js'
import type { Clock } from '../engine/types.js'
import { createTurnBudget, takingTurns, turnHook } from '../scheduling/turn-budget.js'
import type { onRequestHookHandler } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    pdp: Pdp
    /** onRequest hooks for the routes that decide: they wait for the event loop's next turn once the turn budget is spent (none without a budget). */
    decisionTurn: onRequestHookHandler[]
  }
}

export interface PdpPluginOptions {
  now: Clock
  defaultTenant: string
  storeFailure: 'closed' | 'open'
  geo: GeoLookup
  /** Leave the store out of the engine, so that only the policy decides (see AppOptions.policyOnly). */
  policyOnly?: boolean
  /** Spans for the decision steps, when tracing is on. */
  tracer?: DecisionTracer
  /** Milliseconds of deciding per event-loop turn before decisions wait for the next (0 or absent: no limit). */
  turnBudgetMs?: number
}

/** The decision engine, assembled from the collaborators other plugins own. */
export default fp<PdpPluginOptions>(
  async (app, opts) => {
    const options: AssembleOptions = {
      policy: app.policy,
      ...(app.shadowPolicy ? { shadow: app.shadowPolicy } : {}),
      now: opts.now,
      defaultTenant: opts.defaultTenant,
      decisionLog: app.audit,
      metrics: app.metrics,
      ...(opts.policyOnly ? {} : { store: app.store }),
      ...(app.tokenVerifier ? { tokens: app.tokenVerifier } : {}),
      storeFailure: opts.storeFailure,
      onBackgroundError: (err) => app.log.warn({ error: (err as Error).message }, 'background store write failed'),
      onRiskFindings: (findings) => app.responder.onRiskFindings(findings),
      geo: opts.geo,
      ...(opts.tracer ? { tracer: opts.tracer } : {}),
    }
    const pdp = assemblePdp(options)
    const budget = opts.turnBudgetMs ? createTurnBudget({ budgetMs: opts.turnBudgetMs }) : undefined
    app.decorate('pdp', budget ? takingTurns(pdp, budget) : pdp)
    app.decorate('decisionTurn', budget ? [turnHook(budget)] : [])
  },
  { name: 'pdp', dependencies: ['policy', 'audit', 'metrics', 'store', 'identity', 'response'] },
)
