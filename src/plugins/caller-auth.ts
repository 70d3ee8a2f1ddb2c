import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createHash, timingSafeEqual } from 'node:crypto'
import type { TokenVerifier } from '../engine/identity.js'
import { PdpHttpError } from '../errors.js'

export type CallerScope = 'pdp:admin' | 'pdp:events' | 'pdp:decide'

export interface Caller {
  /** `admin-token` for the static token, else the JWT's subject. */
  id: string
  scopes: ReadonlySet<string>
}

declare module 'fastify' {
  interface FastifyInstance {
    /** A preHandler that admits only callers holding `scope`. */
    requireScope(scope: CallerScope): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    caller?: Caller
  }
}

export interface CallerAuthOptions {
  adminToken?: string
  verifier?: TokenVerifier
}

const ALL_SCOPES: ReadonlySet<string> = new Set(['pdp:admin', 'pdp:events', 'pdp:decide'])

/** Compares digests so that neither the content nor the length of the configured token leaks through timing. */
function sameSecret(given: string, expected: Buffer): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), expected)
}

function scopesOf(claims: Record<string, unknown>): Set<string> {
  const out = new Set<string>()
  if (typeof claims.scope === 'string') for (const s of claims.scope.split(' ')) if (s) out.add(s)
  if (Array.isArray(claims.scp)) for (const s of claims.scp) if (typeof s === 'string') out.add(s)
  return out
}

/**
 * The PDP's own callers authenticate: the control plane (and optionally /decide) needs either the
 * static admin token or a JWT from the configured issuer carrying the route's scope. With neither
 * configured, every such route refuses.
 */
export default fp<CallerAuthOptions>(
  async (app, opts) => {
    const expected = opts.adminToken === undefined ? undefined : createHash('sha256').update(opts.adminToken).digest()
    app.decorateRequest('caller', undefined)
    app.decorate('requireScope', (scope: CallerScope) => async (request: FastifyRequest, reply: FastifyReply) => {
      if (!expected && !opts.verifier) {
        throw new PdpHttpError('FORBIDDEN', 'the control plane is disabled: configure PDP_ADMIN_TOKEN or a token issuer (PDP_ISSUER with PDP_JWKS_FILE or PDP_JWKS_URL)')
      }
      const header = request.headers.authorization
      const match = typeof header === 'string' ? /^Bearer +([^\s]+) *$/i.exec(header) : null
      if (!match) {
        reply.header('www-authenticate', 'Bearer realm="pdp"')
        throw new PdpHttpError('UNAUTHORIZED', 'a bearer credential is required')
      }
      const credential = match[1]!
      if (expected && sameSecret(credential, expected)) {
        request.caller = { id: 'admin-token', scopes: ALL_SCOPES }
        return
      }
      if (opts.verifier) {
        const result = await opts.verifier.verify(credential)
        if (result.ok) {
          const scopes = scopesOf(result.token.claims)
          request.caller = { id: result.token.subject.id, scopes }
          if (!scopes.has(scope)) throw new PdpHttpError('FORBIDDEN', `the credential lacks scope ${scope}`)
          return
        }
      }
      reply.header('www-authenticate', 'Bearer realm="pdp", error="invalid_token"')
      throw new PdpHttpError('UNAUTHORIZED', 'the credential is not valid')
    })
  },
  { name: 'caller-auth' },
)
