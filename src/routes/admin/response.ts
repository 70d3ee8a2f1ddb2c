import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { isIP } from 'node:net'
import { Type } from 'typebox'
import { PdpHttpError } from '../../errors.js'
import {
  SUBJECT_RESTRICTIONS,
  addressRestriction,
  liftAddressRestriction,
  liftSubjectRestriction,
  subjectRestrictions,
} from '../../response/control.js'
import { ErrorSchema, Id as IdOf } from '../../schemas/common.js'
import { requires } from '../../schemas/security.js'

export interface ResponseRoutesOptions {
  now: () => number
}

const Id = IdOf()

const RestrictionSchema = Type.Object({
  rule: Type.String({ description: 'The detection rule that imposed it' }),
  since: Type.Integer({ description: 'epoch ms' }),
  until: Type.Optional(Type.Integer({ description: 'epoch ms; absent: until lifted' })),
  level: Type.Optional(Type.String()),
  mode: Type.Optional(Type.String()),
})

const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 429: ErrorSchema, 503: ErrorSchema }

function checkIp(ip: string): void {
  if (isIP(ip) === 0) throw new PdpHttpError('VALIDATION', '/ip must be an IPv4 or IPv6 address', '/ip')
}

/** What automated response imposed on subjects and addresses, and lifting it. */
const responseRoutes: FastifyPluginAsyncTypebox<ResponseRoutesOptions> = async (app, opts) => {
  const auth = app.requireScope('pdp:admin')

  app.get(
    '/admin/subjects/:id/restrictions',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'listSubjectRestrictions',
        summary: 'Lockout, freeze and forced step-up in force for a subject',
        params: Type.Object({ id: Id }),
        response: {
          200: Type.Object({
            subject: Type.String(),
            locked: Type.Optional(RestrictionSchema),
            frozen: Type.Optional(RestrictionSchema),
            stepUp: Type.Optional(RestrictionSchema),
          }),
          ...errors,
        },
      },
    },
    async (request) => ({ subject: request.params.id, ...(await subjectRestrictions(app.store, request.params.id, opts.now())) }),
  )

  app.delete(
    '/admin/subjects/:id/restrictions/:kind',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'liftSubjectRestriction',
        summary: 'Lift a lockout, a freeze or a forced step-up',
        params: Type.Object({ id: Id, kind: Type.Enum(SUBJECT_RESTRICTIONS) }),
        response: { 200: Type.Object({ subject: Type.String(), lifted: Type.String() }), ...errors },
      },
    },
    async (request) => {
      const { id, kind } = request.params
      if (!(await liftSubjectRestriction(app.store, id, kind))) throw new PdpHttpError('NOT_FOUND', `subject ${id} has no ${kind} in force`, '/kind')
      app.audit.event('admin', { action: 'lift_restriction', caller: request.caller?.id, subject: id, restriction: kind })
      return { subject: id, lifted: kind }
    },
  )

  app.get(
    '/admin/ips/:ip',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'getIpRestriction',
        summary: 'Whether an address is blocked or asked for step-ups',
        params: Type.Object({ ip: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: Type.Object({ ip: Type.String(), restriction: Type.Optional(RestrictionSchema) }), ...errors },
      },
    },
    async (request) => {
      const { ip } = request.params
      checkIp(ip)
      const restriction = await addressRestriction(app.store, ip, opts.now())
      return restriction ? { ip, restriction } : { ip }
    },
  )

  app.delete(
    '/admin/ips/:ip',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'liftIpRestriction',
        summary: 'Lift the restriction on an address',
        params: Type.Object({ ip: Type.String({ minLength: 1, maxLength: 64 }) }),
        response: { 200: Type.Object({ ip: Type.String(), lifted: Type.Boolean() }), ...errors },
      },
    },
    async (request) => {
      const { ip } = request.params
      checkIp(ip)
      if (!(await liftAddressRestriction(app.store, ip))) throw new PdpHttpError('NOT_FOUND', `address ${ip} has no restriction`, '/ip')
      app.audit.event('admin', { action: 'lift_address_restriction', caller: request.caller?.id, ip })
      return { ip, lifted: true }
    },
  )
}

export default responseRoutes
