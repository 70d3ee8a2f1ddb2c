import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { isIP } from 'node:net'
import { PdpHttpError } from '../errors.js'
import { ErrorSchema } from '../schemas/common.js'
import { DecideRequestSchema, DecideResponseSchema } from '../schemas/decide.js'

/** POST /decide: translate the body into a DecisionRequest, ask the engine, return its answer. */
const decideRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/decide',
    {
      schema: {
        tags: ['decisions'],
        summary: 'Decide whether a subject may perform an action on a resource',
        body: DecideRequestSchema,
        response: { 200: DecideResponseSchema, 400: ErrorSchema, 413: ErrorSchema, 415: ErrorSchema },
      },
    },
    async (request) => {
      const body = request.body
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
      return app.pdp.decide(body, { requestId: request.id, source: 'http' })
    },
  )
}

export default decideRoutes
