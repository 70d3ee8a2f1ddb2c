import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ErrorSchema } from '../schemas/common.js'
import { PlanRequestSchema, PlanResponseSchema } from '../schemas/plan.js'
import { checkInput, decisionAccess, vouched } from './decide.js'

export interface PlanRoutesOptions {
  /** `token`: callers must present a credential with scope `pdp:decide`, as for /decide. */
  auth: 'none' | 'token'
}

/** POST /plan: which resources of a type the subject may act on, as a filter the caller runs in its own database. */
const planRoutes: FastifyPluginAsyncTypebox<PlanRoutesOptions> = async (app, opts) => {
  const { onRequest, security } = decisionAccess(app, opts.auth)

  app.post(
    '/plan',
    {
      onRequest,
      schema: {
        tags: ['decisions'],
        security,
        operationId: 'plan',
        summary: 'Which resources of a type may a subject perform an action on',
        description:
          'Answers for every resource of the type at once: always_allowed, always_denied, or conditional with a filter over ' +
          'resource.id and resource.attributes, derived from the active policy with the resource unknown. Tokens, gates and ' +
          'the risk engine apply as in a decision; a plan changes no state. When the policy holds a construct no filter can ' +
          'express exactly, the answer is unsupported and names the rule (file:line) and why.',
        body: PlanRequestSchema,
        response: { 200: PlanResponseSchema, 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 413: ErrorSchema, 415: ErrorSchema },
      },
    },
    async (request) => {
      checkInput(request.body)
      return app.pdp.plan(request.body, { requestId: request.id, traceId: request.traceId, callerTrusted: vouched(request) })
    },
  )
}

export default planRoutes
