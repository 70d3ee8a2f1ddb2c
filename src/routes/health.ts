import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { PolicyStatusSchema } from '../schemas/policy-status.js'
import { PUBLIC } from '../schemas/security.js'

const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  reasons: Type.Array(Type.String(), { description: 'Why the instance is not ready; empty when ready' }),
  warnings: Type.Array(Type.String(), { description: 'What is degraded while the instance still answers (a store outage: decisions get the PDP_STORE_FAILURE verdict)' }),
  policy: PolicyStatusSchema,
  store: Type.Object({
    kind: Type.String({ description: 'memory or redis' }),
    ok: Type.Boolean(),
    error: Type.Optional(Type.String()),
  }),
})

/** Liveness and readiness for orchestrators; neither needs credentials nor touches the policy engine's hot path. */
const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], security: PUBLIC, operationId: 'checkLiveness', summary: 'Process is alive', response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  )
  app.get(
    '/readyz',
    { schema: { tags: ['health'], security: PUBLIC, operationId: 'checkReadiness', summary: 'Policy loaded and dependencies reachable', response: { 200: ReadySchema, 503: ReadySchema } } },
    async (_request, reply) => {
      const store: { kind: string; ok: boolean; error?: string } = { kind: app.store.kind, ok: true }
      try {
        await app.store.ping()
      } catch (err) {
        store.ok = false
        store.error = (err as Error).message
      }
      app.metrics.storeHealth(store.ok)
      const policy = app.policy.status()
      const reasons: string[] = []
      const warnings: string[] = []
      if (app.lifecycle.draining) reasons.push('shutting down: finishing in-flight requests')
      // The last good policy keeps answering, but an instance that cannot see edits would silently serve a stale one.
      if (policy.watch.state === 'missing' || policy.watch.state === 'unwatched') {
        reasons.push(`policy ${policy.watch.state}: ${policy.watch.reason ?? 'unknown reason'}; revision ${policy.activeRevision} keeps answering`)
      }
      // A store outage is not unreadiness: every replica shares it, and each still answers with the defined
      // store-failure verdict, which is better than gateways finding no endpoint at all.
      if (!store.ok) warnings.push(`store unreachable: ${store.error}; decisions get the PDP_STORE_FAILURE verdict`)
      if (reasons.length > 0) reply.status(503)
      return { status: reasons.length === 0 ? ('ready' as const) : ('not_ready' as const), reasons, warnings, policy, store }
    },
  )
}

export default healthRoutes
