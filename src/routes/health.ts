import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { PolicyStatusSchema } from '../schemas/policy-status.js'

const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  reasons: Type.Array(Type.String(), { description: 'Why the instance is not ready; empty when ready' }),
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
    { schema: { tags: ['health'], summary: 'Process is alive', response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }),
  )
  app.get(
    '/readyz',
    { schema: { tags: ['health'], summary: 'Policy loaded and dependencies reachable', response: { 200: ReadySchema, 503: ReadySchema } } },
    async (_request, reply) => {
      const store: { kind: string; ok: boolean; error?: string } = { kind: app.store.kind, ok: true }
      try {
        await app.store.ping()
      } catch (err) {
        store.ok = false
        store.error = (err as Error).message
      }
      const policy = app.policy.status()
      const reasons: string[] = []
      // The last good policy keeps answering, but an instance that cannot see edits would silently serve a stale one.
      if (policy.watch.state === 'missing' || policy.watch.state === 'unwatched') {
        reasons.push(`policy ${policy.watch.state}: ${policy.watch.reason ?? 'unknown reason'}; revision ${policy.activeRevision} keeps answering`)
      }
      if (!store.ok) reasons.push(`store unreachable: ${store.error}`)
      if (reasons.length > 0) reply.status(503)
      return { status: reasons.length === 0 ? ('ready' as const) : ('not_ready' as const), reasons, policy, store }
    },
  )
}

export default healthRoutes
