import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ErrorSchema } from '../../schemas/common.js'
import { PolicyStatusSchema } from '../../schemas/policy-status.js'
import { requires } from '../../schemas/security.js'

const ReloadResultSchema = Type.Object({
  ok: Type.Boolean(),
  version: Type.Optional(Type.String()),
  changed: Type.Optional(Type.Boolean()),
  error: Type.Optional(Type.String({ description: 'Why the edit was rejected (file:line: problem)' })),
  status: PolicyStatusSchema,
})

/** Policy status and an explicit reload, for operators. */
const adminPolicyRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const auth = app.requireScope('pdp:admin')
  const errors = { 401: ErrorSchema, 403: ErrorSchema, 429: ErrorSchema }
  app.get(
    '/admin/policy',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'getPolicyStatus',
        summary: 'Active policy revision, last reload and last rejected edit',
        response: { 200: PolicyStatusSchema, ...errors },
      },
    },
    async () => app.policy.status(),
  )
  app.post(
    '/admin/policy/reload',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'reloadPolicy',
        summary: 'Reload the policy directory now',
        response: { 200: ReloadResultSchema, ...errors },
      },
    },
    async (request) => {
      const result = await app.policy.reload()
      app.audit.event('admin', { action: 'policy_reload', caller: request.caller?.id, ok: result.ok })
      return { ...result, status: app.policy.status() }
    },
  )
}

export default adminPolicyRoutes
