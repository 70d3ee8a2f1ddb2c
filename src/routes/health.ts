import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { PolicyStatusSchema } from '../schemas/policy-status.js'


const ReadySchema = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  policy: PolicyStatusSchema,
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
    async () => ({ status: 'ready' as const, policy: app.policy.status() }),
  )
}

export default healthRoutes
