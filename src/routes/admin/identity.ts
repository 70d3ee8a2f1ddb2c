import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { PdpHttpError, type ErrorKind } from '../../errors.js'
import { ADMIN_TOKEN_CALLER } from '../../plugins/caller-auth.js'
import { GrantError, approveGrant, createGrant, listGrants, revokeGrant, type Grant, type GrantInput } from '../../identity/grants.js'
import { writeRevocation, type Revocation } from '../../identity/revocation.js'
import { listSessions, sessionTtlMs } from '../../identity/sessions.js'
import { ErrorSchema, Id as IdOf, Name as NameOf } from '../../schemas/common.js'
import { requires } from '../../schemas/security.js'

export interface IdentityRoutesOptions {
  now: () => number
  /** Longest token lifetime, seconds: a jti revocation without an expiry is kept this long. */
  maxTokenLifetimeSec: number
}

const Id = IdOf()
const Name = NameOf()
const EpochSeconds = Type.Integer({ minimum: 0, maximum: 1e11 })

const RevocationSchema = Type.Object(
  {
    jti: Type.Optional(Id),
    expiresAt: Type.Optional(EpochSeconds),
    sessionId: Type.Optional(Id),
    subject: Type.Optional(Id),
    before: Type.Optional(EpochSeconds),
  },
  { additionalProperties: false, description: 'Exactly one of jti (with the token expiry, if known), sessionId, or subject (with before, default now)' },
)

const GrantSchema = Type.Object({
  id: Type.String(),
  subject: Type.String(),
  role: Type.Optional(Type.String()),
  permission: Type.Optional(Type.Object({ resourceType: Type.String(), action: Type.String() })),
  tenant: Type.Optional(Type.String()),
  resource: Type.Optional(Type.Object({ type: Type.String(), id: Type.Optional(Type.String()) })),
  durationSeconds: Type.Integer(),
  justification: Type.String(),
  grantedBy: Type.String(),
  approvedBy: Type.Optional(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('pending')]),
  createdAt: Type.Integer({ description: 'epoch ms' }),
  expiresAt: Type.Optional(Type.Integer({ description: 'epoch ms' })),
})

const GrantRequestSchema = Type.Object(
  {
    subject: Id,
    role: Type.Optional(Name),
    permission: Type.Optional(Type.Object({ resourceType: Name, action: Name }, { additionalProperties: false })),
    tenant: Type.Optional(Name),
    resource: Type.Optional(Type.Object({ type: Name, id: Type.Optional(Id) }, { additionalProperties: false })),
    durationSeconds: Type.Integer({ minimum: 1, maximum: 31_536_000 }),
    justification: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  {
    additionalProperties: false,
    description: 'Who grants is the authenticated caller (the JWT subject, or "admin-token" for the static token); a grantedBy field is refused',
  },
)

const SessionSchema = Type.Object({
  id: Type.String(),
  created: Type.Integer({ description: 'epoch ms' }),
  lastActivity: Type.Integer({ description: 'epoch ms' }),
  device: Type.Optional(Type.String()),
  ip: Type.Optional(Type.String()),
  revoked: Type.Boolean(),
})

const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 429: ErrorSchema }

/** Who is acting: always the authenticated caller, never a name from the body. */
function actingAdmin(request: FastifyRequest): string {
  // requireScope ran first and either set the caller or refused the request.
  return request.caller!.id
}

const GRANT_ERRORS: Record<GrantError['kind'], ErrorKind> = {
  validation: 'VALIDATION',
  not_found: 'NOT_FOUND',
  conflict: 'CONFLICT',
  self_grant: 'SELF_GRANT',
  four_eyes: 'FOUR_EYES',
}

function grantError(err: unknown): never {
  if (err instanceof GrantError) throw new PdpHttpError(GRANT_ERRORS[err.kind], err.message, err.field)
  throw err
}

/** Revocations, sessions and just-in-time grants: the identity side of the control plane. */
const identityRoutes: FastifyPluginAsyncTypebox<IdentityRoutesOptions> = async (app, opts) => {
  const auth = app.requireScope('pdp:admin')
  const identity = () => app.policy.current.identity

  app.post(
    '/admin/revocations',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'createRevocation',
        summary: 'Revoke a token (jti), a session, or everything a subject authenticated before a time',
        body: RevocationSchema,
        response: { 201: Type.Object({ revoked: RevocationSchema, at: Type.Integer({ description: 'epoch ms' }) }), ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body
      const chosen = [body.jti, body.sessionId, body.subject].filter((v) => v !== undefined).length
      if (chosen !== 1) throw new PdpHttpError('VALIDATION', 'send exactly one of /jti, /sessionId, /subject', '/jti')
      if (body.expiresAt !== undefined && body.jti === undefined) throw new PdpHttpError('VALIDATION', '/expiresAt goes with /jti', '/expiresAt')
      if (body.before !== undefined && body.subject === undefined) throw new PdpHttpError('VALIDATION', '/before goes with /subject', '/before')
      const now = opts.now()
      const revocation: Revocation = {}
      const revoked: typeof body = {}
      if (body.jti !== undefined) {
        const expiresAt = body.expiresAt ?? Math.floor(now / 1000) + opts.maxTokenLifetimeSec
        revocation.jti = { id: body.jti, expiresAt }
        Object.assign(revoked, { jti: body.jti, expiresAt })
      }
      if (body.sessionId !== undefined) {
        revocation.sessionId = body.sessionId
        revoked.sessionId = body.sessionId
      }
      if (body.subject !== undefined) {
        const before = body.before ?? Math.ceil(now / 1000)
        revocation.subject = { id: body.subject, before }
        Object.assign(revoked, { subject: body.subject, before })
      }
      const batch = app.store.batch()
      writeRevocation(batch, revocation, now, sessionTtlMs(identity()) + opts.maxTokenLifetimeSec * 1000)
      await batch.exec()
      app.audit.event('admin', { action: 'revoke', caller: request.caller?.id, ...revoked })
      reply.status(201)
      return { revoked, at: now }
    },
  )

  const SubjectParams = Type.Object({ id: Id })
  app.get(
    '/admin/subjects/:id/sessions',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'listSubjectSessions',
        summary: 'Sessions the PDP has seen for a subject',
        params: SubjectParams,
        response: { 200: Type.Object({ subject: Type.String(), sessions: Type.Array(SessionSchema) }), ...errors },
      },
    },
    async (request) => ({ subject: request.params.id, sessions: await listSessions(app.store, request.params.id) }),
  )

  app.delete(
    '/admin/subjects/:id/sessions/:sid',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'revokeSubjectSession',
        summary: 'Revoke one session',
        params: Type.Object({ id: Id, sid: Id }),
        response: { 200: Type.Object({ subject: Type.String(), revoked: Type.Array(Type.String()) }), ...errors },
      },
    },
    async (request) => {
      const { id, sid } = request.params
      const batch = app.store.batch()
      writeRevocation(batch, { sessionId: sid }, opts.now(), sessionTtlMs(identity()))
      await batch.exec()
      app.audit.event('admin', { action: 'revoke_session', caller: request.caller?.id, subject: id, sessionId: sid })
      return { subject: id, revoked: [sid] }
    },
  )

  app.delete(
    '/admin/subjects/:id/sessions',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'revokeSubjectSessions',
        summary: 'Revoke every session and token of a subject ("log out everywhere")',
        params: SubjectParams,
        response: { 200: Type.Object({ subject: Type.String(), revoked: Type.Array(Type.String()), notBefore: Type.Integer() }), ...errors },
      },
    },
    async (request) => {
      const { id } = request.params
      const now = opts.now()
      const sessions = await listSessions(app.store, id)
      const notBefore = Math.ceil(now / 1000)
      const batch = app.store.batch()
      const ttl = sessionTtlMs(identity()) + opts.maxTokenLifetimeSec * 1000
      writeRevocation(batch, { subject: { id, before: notBefore } }, now, ttl)
      for (const s of sessions) writeRevocation(batch, { sessionId: s.id }, now, ttl)
      await batch.exec()
      const revoked = sessions.map((s) => s.id)
      app.audit.event('admin', { action: 'revoke_all_sessions', caller: request.caller?.id, subject: id, sessions: revoked, notBefore })
      return { subject: id, revoked, notBefore }
    },
  )

  app.post(
    '/admin/grants',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'createGrant',
        summary: 'Grant a role or a permission for a while (pending approval when sensitive); never to the caller themself',
        body: GrantRequestSchema,
        response: { 201: GrantSchema, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body
      const input: GrantInput = {
        subject: body.subject,
        durationSeconds: body.durationSeconds,
        justification: body.justification,
        grantedBy: actingAdmin(request),
      }
      if (body.role !== undefined) input.role = body.role
      if (body.permission !== undefined) input.permission = body.permission
      if (body.tenant !== undefined) input.tenant = body.tenant
      if (body.resource !== undefined) input.resource = body.resource
      let grant: Grant
      try {
        const bundle = app.policy.current
        grant = await createGrant(app.store, input, bundle.identity, { known: bundle.evaluator.roles, sensitive: bundle.sensitiveGrantRoles }, opts.now())
      } catch (err) {
        grantError(err)
      }
      app.audit.event('admin', { action: 'grant_created', caller: request.caller?.id, grant })
      reply.status(201)
      return grant
    },
  )

  app.get(
    '/admin/grants/:id',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'listSubjectGrants',
        summary: 'Active and pending grants of a subject',
        params: SubjectParams,
        response: { 200: Type.Object({ subject: Type.String(), grants: Type.Array(GrantSchema) }), ...errors },
      },
    },
    async (request) => ({ subject: request.params.id, grants: await listGrants(app.store, request.params.id, opts.now()) }),
  )

  const GrantParams = Type.Object({ id: Id, grantId: Id })
  app.post(
    '/admin/grants/:id/:grantId/approve',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security: requires('pdp:admin'),
        operationId: 'approveGrant',
        summary: 'Approve a pending grant: by an admin with their own JWT, neither its creator nor its subject',
        description: 'The approver is the authenticated caller: send no body or {} (an approvedBy field is refused). The static admin token is one shared secret, not a person, so it cannot approve.',
        params: GrantParams,
        body: Type.Object({}, { additionalProperties: false }),
        response: { 200: GrantSchema, ...errors },
      },
      // The body is optional: no body reads as an empty one, so a stray approvedBy is still refused.
      preValidation: (request, _reply, done) => {
        if (request.body === undefined || request.body === null) request.body = {}
        done()
      },
    },
    async (request) => {
      const approvedBy = actingAdmin(request)
      if (approvedBy === ADMIN_TOKEN_CALLER) {
        throw new PdpHttpError('FOUR_EYES', 'the static admin token is shared, not a person: approve with an admin JWT of someone other than the grant\'s creator')
      }
      let grant: Grant
      try {
        grant = await approveGrant(app.store, request.params.id, request.params.grantId, approvedBy, identity(), opts.now())
      } catch (err) {
        grantError(err)
      }
      app.audit.event('admin', { action: 'grant_approved', caller: request.caller?.id, grant })
      return grant
    },
  )

  app.delete(
    '/admin/grants/:id/:grantId',
    {
      preHandler: auth,
      schema: { tags: ['admin'], security: requires('pdp:admin'), operationId: 'revokeGrant', summary: 'Revoke a grant', params: GrantParams, response: { 200: GrantSchema, ...errors } },
    },
    async (request) => {
      let grant: Grant
      try {
        grant = await revokeGrant(app.store, request.params.id, request.params.grantId)
      } catch (err) {
        grantError(err)
      }
      app.audit.event('admin', { action: 'grant_revoked', caller: request.caller?.id, grant })
      return grant
    },
  )
}

export default identityRoutes
