import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import { isIP } from 'node:net'
import { PdpHttpError } from '../errors.js'
import { ErrorSchema } from '../schemas/common.js'
import { DecideBatchRequestSchema, DecideBatchResponseSchema, DecideRequestSchema, DecideResponseSchema } from '../schemas/decide.js'
import { accepts, requires } from '../schemas/security.js'

export interface DecideRoutesOptions {
  /** Most items in one batch. */
  batchMax: number
  /** `token`: callers must present a credential with scope `pdp:decide`. */
  auth: 'none' | 'token'
}

interface Identifies {
  token?: string | undefined
  subject?: unknown
  context?: { ip?: string | undefined } | undefined
}

/** Checks the body rules the schema cannot express; throws a 400 naming the field. */
export function checkInput(body: Identifies): void {
  if (body.token !== undefined && body.subject !== undefined) {
    throw new PdpHttpError('VALIDATION', '/token and /subject exclude each other: send one', '/token')
  }
  if (body.token === undefined && body.subject === undefined) {
    throw new PdpHttpError('VALIDATION', '/subject is required (or /token)', '/subject')
  }
  const ip = body.context?.ip
  if (ip !== undefined && isIP(ip) === 0) {
    throw new PdpHttpError('VALIDATION', '/context/ip must be an IPv4 or IPv6 address', '/context/ip')
  }
}

/** A caller authenticated with scope pdp:decide (and checked against revocations) vouches for the subjects it names; an anonymous one does not. */
export const vouched = (request: FastifyRequest) => request.caller?.scopes.has('pdp:decide') === true && request.caller.unchecked !== true

/**
 * The onRequest hooks and OpenAPI security of a route that decides (/decide, /decide/batch, /plan): its turn of the
 * event loop, then the caller's credential. With PDP_DECIDE_AUTH=token the credential is required; otherwise one with
 * pdp:decide, when sent, still vouches for the subjects.
 */
export function decisionAccess(app: FastifyInstance, auth: 'none' | 'token') {
  const onRequest: onRequestHookHandler[] = [...app.decisionTurn, auth === 'token' ? app.requireScope('pdp:decide') : app.acceptScope('pdp:decide')]
  return { onRequest, security: auth === 'token' ? requires('pdp:decide') : accepts('pdp:decide') }
}

/** POST /decide and /decide/batch: translate the body into decision requests, ask the engine, return its answers. */
const decideRoutes: FastifyPluginAsyncTypebox<DecideRoutesOptions> = async (app, opts) => {
  const { onRequest, security } = decisionAccess(app, opts.auth)
  const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 413: ErrorSchema, 415: ErrorSchema }

  app.post(
    '/decide',
    {
      onRequest,
      schema: {
        tags: ['decisions'],
        security,
        operationId: 'decide',
        summary: 'Decide whether a subject may perform an action on a resource',
        body: DecideRequestSchema,
        response: { 200: DecideResponseSchema, ...errors },
      },
    },
    async (request) => {
      checkInput(request.body)
      return app.pdp.decide(request.body, { requestId: request.id, traceId: request.traceId, source: 'http', callerTrusted: vouched(request) })
    },
  )

  app.post(
    '/decide/batch',
    {
      onRequest,
      schema: {
        tags: ['decisions'],
        security,
        operationId: 'decideBatch',
        summary: 'Decide many (action, resource) pairs for one subject and context',
        description:
          'The token is verified once, state is read once and risk is assessed once; every item gets its own verdict, ' +
          'decision id and decision-log line. Answers are in the order of the items.',
        body: DecideBatchRequestSchema,
        response: { 200: DecideBatchResponseSchema, ...errors },
      },
    },
    async (request) => {
      const { items, ...input } = request.body
      checkInput(input)
      if (items.length > opts.batchMax) {
        throw new PdpHttpError('VALIDATION', `/items has ${items.length} entries; at most ${opts.batchMax} are allowed (PDP_BATCH_MAX)`, '/items')
      }
      const decisions = await app.pdp.decideBatch(input, items, { requestId: request.id, traceId: request.traceId, source: 'batch', callerTrusted: vouched(request) })
      return { decisions }
    },
  )
}

export default decideRoutes
