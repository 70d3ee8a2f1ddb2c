import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { isIP } from 'node:net'
import { Type } from 'typebox'
import { PdpHttpError } from '../errors.js'
import { SECURITY_EVENT_TYPES, type SecurityEvent } from '../response/events.js'
import { ErrorSchema, Id, Name } from '../schemas/common.js'
import { requires } from '../schemas/security.js'

export interface EventRoutesOptions {
  now: () => number
  /** Requests per minute per caller. */
  rateLimit: number
}

/** Events may arrive late (queues, retries) but not from far in the past or from the future. */
const MAX_AGE_MS = 24 * 3_600_000
const MAX_FUTURE_MS = 5 * 60_000

const EventSchema = Type.Object(
  {
    type: Type.Enum(SECURITY_EVENT_TYPES, { description: 'What happened' }),
    subject: Id(),
    tenant: Type.Optional(Name()),
    ip: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'The client address the event came from' })),
    deviceId: Type.Optional(Id()),
    sessionId: Type.Optional(Id()),
    userAgent: Type.Optional(Type.String({ maxLength: 1024 })),
    time: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e11, description: 'When it happened, epoch seconds; default: when received. At most 24 h old, at most 5 min ahead' })),
  },
  { additionalProperties: false },
)

const FiringSchema = Type.Object({
  rule: Type.String(),
  trigger: Type.String(),
  target: Type.Object({ subject: Type.Optional(Type.String()), tenant: Type.Optional(Type.String()), ip: Type.Optional(Type.String()) }),
  actions: Type.Array(Type.String()),
  skipped: Type.Array(Type.String({ description: 'Actions with nothing to act on (block_ip without an address)' })),
})

const EventOutcomeSchema = Type.Object({
  eventId: Type.String({ description: 'UUIDv7 of the recorded event' }),
  fired: Type.Array(FiringSchema, { description: 'Detection rules this event set off, with the actions taken' }),
})

/** POST /events: security events from identity providers, feeding device trust, baselines and automated response. */
const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, opts) => {
  app.post(
    '/events',
    {
      preHandler: app.requireScope('pdp:events'),
      config: { rateLimit: { max: opts.rateLimit, timeWindow: 60_000 } },
      schema: {
        tags: ['events'],
        security: requires('pdp:events'),
        operationId: 'recordEvent',
        summary: 'Record a security event (login success or failure, MFA, logout, password reset, suspicious activity)',
        description:
          'Updates device trust and the behaviour baseline and runs the detection rules of response.yaml; the answer lists ' +
          'the rules that fired and the actions taken, all of which are in force when it arrives.',
        body: EventSchema,
        response: { 200: EventOutcomeSchema, 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 413: ErrorSchema, 415: ErrorSchema, 429: ErrorSchema, 503: ErrorSchema },
      },
    },
    async (request) => {
      const body = request.body
      if (body.ip !== undefined && isIP(body.ip) === 0) throw new PdpHttpError('VALIDATION', '/ip must be an IPv4 or IPv6 address', '/ip')
      const now = opts.now()
      const time = body.time === undefined ? now : body.time * 1000
      if (time < now - MAX_AGE_MS) throw new PdpHttpError('VALIDATION', '/time is more than 24 hours in the past', '/time')
      if (time > now + MAX_FUTURE_MS) throw new PdpHttpError('VALIDATION', '/time is more than 5 minutes in the future', '/time')
      const event: SecurityEvent = { type: body.type, subject: body.subject, time }
      if (body.tenant !== undefined) event.tenant = body.tenant
      if (body.ip !== undefined) event.ip = body.ip
      if (body.deviceId !== undefined) event.deviceId = body.deviceId
      if (body.sessionId !== undefined) event.sessionId = body.sessionId
      if (body.userAgent !== undefined) event.userAgent = body.userAgent
      return app.responder.record(event)
    },
  )
}

export default eventRoutes
