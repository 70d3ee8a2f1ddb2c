import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { hash, timingSafeEqual } from 'node:crypto'
import { isIP } from 'node:net'
import type { StateStore, TokenVerifier, VerifiedToken } from '../engine/ports.js'
import type { Clock } from '../engine/types.js'
import { PdpHttpError } from '../errors.js'
import { TrustedProxies, clientIp } from '../http/client-ip.js'
import { identityKeys } from '../identity/keys.js'
import { prepareRevocationCheck } from '../identity/revocation.js'
import { StoreUnavailableError } from '../store/state-store.js'
import { bearerToken } from '../http/bearer.js'

export type CallerScope = 'pdp:admin' | 'pdp:events' | 'pdp:decide'

/** The identity of whoever holds the static admin token: one shared secret is one identity. */
export const ADMIN_TOKEN_CALLER = 'admin-token'

export interface Caller {
  /** ADMIN_TOKEN_CALLER for the static token, else the JWT's subject. */
  id: string
  scopes: ReadonlySet<string>
  /** A JWT whose revocations could not be read (store down): admitted to /decide, but vouches for no subject. */
  unchecked?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    /** A preHandler that admits only callers holding `scope`. */
    requireScope(scope: CallerScope): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /**
     * A preHandler for routes open to anyone that still count a credential when one is sent: it is checked as
     * requireScope checks it (a bad or revoked one is a 401), and one without `scope` is simply not counted.
     */
    acceptScope(scope: CallerScope): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
  interface FastifyRequest {
    caller?: Caller
  }
}

export interface CallerAuthOptions {
  adminToken?: string
  verifier?: TokenVerifier
  store: StateStore
  now: Clock
  trustedProxies: readonly string[]
  /** Failed authentications per client address and window before failures are answered 429. */
  failureLimit: number
  failureWindowMs: number
}

const ALL_SCOPES: ReadonlySet<string> = new Set(['pdp:admin', 'pdp:events', 'pdp:decide'])

/**
 * Scopes of the control plane: their failures are counted, and a JWT whose revocations cannot be read is
 * refused. /decide (pdp:decide) callers are checked against revocations too, but when the store is down
 * such a caller is still admitted, as one that vouches for nobody: the decision then follows
 * PDP_STORE_FAILURE like any other, instead of becoming a 503.
 */
const CONTROL_PLANE: ReadonlySet<CallerScope> = new Set(['pdp:admin', 'pdp:events'])

/**
 * Compares digests so that neither the content nor the length of the configured token leaks through timing.
 * The one-shot hash: it runs on every authenticated request, and a Hash object per call costs several times more.
 */
function sameSecret(given: string, expected: Buffer): boolean {
  return timingSafeEqual(hash('sha256', given, 'buffer'), expected)
}

function scopesOf(claims: Record<string, unknown>): Set<string> {
  const out = new Set<string>()
  if (typeof claims.scope === 'string') for (const s of claims.scope.split(' ')) if (s) out.add(s)
  if (Array.isArray(claims.scp)) for (const s of claims.scp) if (typeof s === 'string') out.add(s)
  return out
}

/** The eight groups of a valid IPv6 address, without leading zeros; an IPv4 tail stands for two groups. */
function ipv6Groups(address: string): string[] {
  const split = (part: string | undefined) => {
    const groups = part ? part.split(':') : []
    if (groups.length > 0 && groups[groups.length - 1]!.includes('.')) groups.splice(-1, 1, 'v4', 'v4')
    return groups
  }
  const [head, tail] = address.split('::') as [string, string?]
  const left = split(head)
  const right = split(tail)
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0')
  return [...left, ...zeros, ...right].map((g) => g.replace(/^0+(?=.)/, ''))
}

/**
 * Whom failures are counted against: the IPv4 address, or the IPv6 /64, since one host usually
 * holds a whole /64 and could otherwise spread its attempts over countless addresses.
 */
export function failureBucket(address: string): string {
  if (isIP(address) !== 6) return address
  const bare = address.split('%')[0]!.toLowerCase()
  return `${ipv6Groups(bare).slice(0, 4).join(':')}::/64`
}

type Outcome =
  | { ok: true; caller: Caller }
  | { ok: false; message: string; missing?: boolean }

/**
 * The PDP's own callers authenticate: the control plane (and optionally /decide) needs either the
 * static admin token or a JWT from the configured issuer carrying the route's scope. With neither
 * configured, every such route refuses.
 *
 * On the control plane, a JWT is also checked against the PDP's revocations (its jti, its session,
 * its subject), and every failed authentication is counted against the client's address. A caller
 * that authenticates is always admitted; failures past the address's limit in the window are answered
 * 429 instead of 401, so a flood of bad credentials is visible and bounded without locking out a good
 * caller who shares its address.
 */
export default fp<CallerAuthOptions>(
  async (app, opts) => {
    const expected = opts.adminToken === undefined ? undefined : hash('sha256', opts.adminToken, 'buffer')
    const trusted = new TrustedProxies(opts.trustedProxies)
    app.decorateRequest('caller', undefined)

    const authenticate = async (credential: string | undefined): Promise<{ outcome: Outcome; token?: VerifiedToken }> => {
      if (credential === undefined) return { outcome: { ok: false, message: 'a bearer credential is required', missing: true } }
      if (expected && sameSecret(credential, expected)) return { outcome: { ok: true, caller: { id: ADMIN_TOKEN_CALLER, scopes: ALL_SCOPES } } }
      if (opts.verifier) {
        const result = await opts.verifier.verify(credential)
        // A JWT naming the static token's identity would pass for it in grants and audit lines.
        if (result.ok && result.token.subject.id === ADMIN_TOKEN_CALLER) return { outcome: { ok: false, message: `the subject "${ADMIN_TOKEN_CALLER}" is reserved for the static admin token` } }
        if (result.ok) {
          const caller = { id: result.token.subject.id, scopes: scopesOf(result.token.claims) }
          return { outcome: { ok: true, caller }, token: result.token }
        }
      }
      return { outcome: { ok: false, message: 'the credential is not valid' } }
    }

    /** Counts a failed authentication against the client's address; past the limit, answers 429. */
    const countFailure = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const now = opts.now()
      const windowStart = now - (now % opts.failureWindowMs)
      const address = clientIp(request.socket.remoteAddress ?? '', request.headers['x-forwarded-for'], request.headers['x-real-ip'], trusted)
      const batch = app.store.batch()
      // Incrementing first and judging the result keeps concurrent failures from all reading "under the limit".
      const count = batch.incrBy(identityKeys.authFailures(failureBucket(address), windowStart), 1, opts.failureWindowMs + 60_000)
      try {
        await batch.exec()
      } catch (err) {
        // The limiter needs the store; when it does not answer (within its time-out) the failure goes uncounted, never a 5xx.
        if (err instanceof StoreUnavailableError) return
        throw err
      }
      if (count.value > opts.failureLimit) {
        reply.header('retry-after', String(Math.ceil((windowStart + opts.failureWindowMs - now) / 1000)))
        throw new PdpHttpError('RATE_LIMITED', 'too many failed authentications from this address; try again later')
      }
    }

    app.decorate('requireScope', (scope: CallerScope) => async (request: FastifyRequest, reply: FastifyReply) => {
      if (!expected && !opts.verifier) {
        throw new PdpHttpError('FORBIDDEN', 'the control plane is disabled: configure PDP_ADMIN_TOKEN or a token issuer (PDP_ISSUER with PDP_JWKS_FILE or PDP_JWKS_URL)')
      }
      const header = request.headers.authorization
      const { token, ...rest } = await authenticate(bearerToken(typeof header === 'string' ? header : undefined))
      let outcome = rest.outcome

      const controlPlane = CONTROL_PLANE.has(scope)
      if (token && outcome.ok) {
        const batch = app.store.batch()
        const revoked = prepareRevocationCheck(batch, token.subject.id, token)
        let readable = true
        try {
          await batch.exec()
        } catch (err) {
          if (!(err instanceof StoreUnavailableError)) throw err
          // Deny by default on the control plane: a JWT whose revocation cannot be read is not admitted.
          if (controlPlane) throw new PdpHttpError('NOT_READY', 'the state store is unavailable, so the credential cannot be checked against revocations')
          readable = false
          outcome = { ok: true, caller: { ...outcome.caller, unchecked: true } }
        }
        const reason = readable ? revoked() : undefined
        if (reason) outcome = { ok: false, message: reason === 'session_revoked' ? "the credential's session has been revoked" : 'the credential has been revoked' }
      }
      if (controlPlane && !outcome.ok) await countFailure(request, reply)

      if (!outcome.ok) {
        reply.header('www-authenticate', outcome.missing ? 'Bearer realm="pdp"' : 'Bearer realm="pdp", error="invalid_token"')
        throw new PdpHttpError('UNAUTHORIZED', outcome.message)
      }
      request.caller = outcome.caller
      if (!outcome.caller.scopes.has(scope)) throw new PdpHttpError('FORBIDDEN', `the credential lacks scope ${scope}`)
    })

    app.decorate('acceptScope', (scope: CallerScope) => {
      const required = app.requireScope(scope)
      return async (request: FastifyRequest, reply: FastifyReply) => {
        // Without a credential source there is nothing to check a credential against, so none can count.
        if (request.headers.authorization === undefined || (!expected && !opts.verifier)) return
        try {
          await required(request, reply)
        } catch (err) {
          if (err instanceof PdpHttpError && err.kind === 'FORBIDDEN') return
          throw err
        }
      }
    })
  },
  { name: 'caller-auth' },
)
