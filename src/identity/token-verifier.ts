import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { LRUCache } from 'lru-cache'
import type { TokenVerifier, VerifiedToken, VerifyResult } from '../engine/ports.js'
import { isIdentifier, isWellFormed } from '../engine/identifiers.js'
import { publicKeySet, remoteJwks } from './remote-jwks.js'

/** Verified tokens kept when TokenVerifierOptions.cacheSize is not given. */
export const DEFAULT_TOKEN_CACHE_SIZE = 10_000

export interface TokenVerifierOptions {
  /** A local JWKS file with the identity provider's public keys. */
  jwksFile?: string
  /** A remote JWKS: fetched lazily, cached, refetched at most once per cool-down, and backed off after a failure. */
  jwksUrl?: string
  /** An in-memory JWKS (tests, embedding). */
  jwks?: JSONWebKeySet
  issuer: string | string[]
  audience: string | string[]
  /** Accepted algorithms; `none` and HMAC are refused at creation. */
  algorithms?: string[]
  clockToleranceSec?: number
  /** Longest accepted `exp - iat`, seconds. */
  maxLifetimeSec?: number
  /** Dotted claim path of the roles array. */
  rolesClaim?: string
  tenantClaim?: string
  /** Dotted claim path of a device id; unset means tokens name no device. */
  deviceClaim?: string
  /** Longer input is refused before any parsing. */
  maxTokenBytes?: number
  /** Verified tokens kept (keyed by a hash of the token); 0 disables the cache. */
  cacheSize?: number
  now?: () => number
  /** Remote JWKS: age at which fetched keys are refreshed, and the shortest time between two fetches, ms. */
  jwksCacheMaxAgeMs?: number
  jwksCooldownMs?: number
  /** Remote JWKS: longest wait for one fetch, largest body, and the pause after a failed fetch. */
  jwksTimeoutMs?: number
  jwksMaxBytes?: number
  jwksFailureBackoffMs?: number
  /** Why a remote JWKS fetch failed, for the log. */
  onJwksError?: (message: string) => void
}

export interface ConfiguredTokenVerifier extends TokenVerifier {
  /** Re-reads the JWKS file (after key rotation). */
  reload(): Promise<void>
}

const DEFAULT_ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA']

export class TokenVerifierConfigError extends Error {
  override name = 'TokenVerifierConfigError'
}

function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload
  for (const part of path.split('.')) {
    // Own claims only: a path segment such as "constructor" must not find Object.prototype's.
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string' && isWellFormed(v))
/** Claims that become store keys and log fields (sub, jti, sid, tenant, roles) obey the HTTP schemas' identifier rule. */
const isId = (value: unknown): value is string => typeof value === 'string' && value !== '' && isIdentifier(value)
const ID_RULE = 'a non-empty string without control characters or unpaired surrogates'

class ClaimError extends Error {}

function toVerified(payload: JWTPayload, rolesClaim: string, tenantClaim: string, deviceClaim: string | undefined): VerifiedToken {
  if (!isId(payload.sub)) throw new ClaimError(`sub must be ${ID_RULE}`)
  if (!isId(payload.jti)) throw new ClaimError(`jti must be ${ID_RULE}`)
  const roles = claimAt(payload, rolesClaim)
  if (roles !== undefined && !(Array.isArray(roles) && roles.every(isId))) throw new ClaimError(`${rolesClaim} must be an array, each ${ID_RULE}`)
  const tenant = claimAt(payload, tenantClaim)
  if (tenant !== undefined && !isId(tenant)) throw new ClaimError(`${tenantClaim} must be ${ID_RULE}`)
  const amr = payload.amr
  if (amr !== undefined && !isStringArray(amr)) throw new ClaimError('amr must be an array of well-formed strings')
  const acr = payload.acr
  if (acr !== undefined && !(typeof acr === 'string' && isWellFormed(acr))) throw new ClaimError('acr must be a well-formed string')
  const authTime = payload.auth_time
  if (authTime !== undefined && (typeof authTime !== 'number' || !Number.isFinite(authTime))) throw new ClaimError('auth_time must be a number')
  const sid = payload.sid
  if (sid !== undefined && !isId(sid)) throw new ClaimError(`sid must be ${ID_RULE}`)
  const device = deviceClaim === undefined ? undefined : claimAt(payload, deviceClaim)
  if (device !== undefined && !isId(device)) throw new ClaimError(`${deviceClaim} must be ${ID_RULE}`)

  const verified: VerifiedToken = {
    subject: { id: payload.sub, roles: roles ?? [] },
    session: {},
    jti: payload.jti,
    issuedAt: payload.iat!,
    expiresAt: payload.exp!,
    claims: payload as Record<string, unknown>,
  }
  if (tenant !== undefined) verified.subject.tenant = tenant as string
  if (sid !== undefined) verified.session.id = sid as string
  if (authTime !== undefined) verified.session.authTime = authTime as number
  if (amr !== undefined) verified.session.amr = amr
  if (acr !== undefined) verified.session.acr = acr as string
  if (device !== undefined) verified.deviceId = device as string
  return verified
}

/**
 * Verifies tokens itself with jose, against keys it was configured with only: header fields such as
 * `jku`, `x5u`, `x5c` or `jwk` never make it fetch or trust a key. Never throws from verify().
 */
export async function createTokenVerifier(options: TokenVerifierOptions): Promise<ConfiguredTokenVerifier> {
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS
  const refused = algorithms.filter((a) => a === 'none' || /^HS/i.test(a))
  if (refused.length > 0) throw new TokenVerifierConfigError(`algorithms ${refused.join(', ')} are never accepted`)
  if (algorithms.length === 0) throw new TokenVerifierConfigError('at least one algorithm must be accepted')
  const sources = [options.jwksFile, options.jwksUrl, options.jwks].filter((s) => s !== undefined).length
  if (sources !== 1) throw new TokenVerifierConfigError('configure exactly one key source: a JWKS file, a JWKS URL or a JWKS')

  const now = options.now ?? Date.now
  const tolerance = options.clockToleranceSec ?? 30
  const maxLifetime = options.maxLifetimeSec ?? 900
  const maxBytes = options.maxTokenBytes ?? 8192
  const rolesClaim = options.rolesClaim ?? 'roles'
  const tenantClaim = options.tenantClaim ?? 'tenant'

  let keys: JWTVerifyGetKey
  const loadFile = async (file: string) => {
    let parsed: unknown
    try {
      parsed = JSON.parse(await readFile(file, 'utf8'))
    } catch (err) {
      throw new TokenVerifierConfigError(`cannot read JWKS file ${file}: ${(err as Error).message}`)
    }
    let jwks: JSONWebKeySet
    try {
      jwks = publicKeySet(parsed, `JWKS file ${file}`)
    } catch (err) {
      throw new TokenVerifierConfigError((err as Error).message)
    }
    keys = createLocalJWKSet(jwks)
  }
  if (options.jwksFile !== undefined) await loadFile(options.jwksFile)
  else if (options.jwks !== undefined) keys = createLocalJWKSet(options.jwks)
  else {
    const remote: Parameters<typeof remoteJwks>[0] = {
      url: new URL(options.jwksUrl!),
      now,
      timeoutMs: options.jwksTimeoutMs ?? 2_000,
      maxBytes: options.jwksMaxBytes ?? 262_144,
      maxAgeMs: options.jwksCacheMaxAgeMs ?? 600_000,
      cooldownMs: options.jwksCooldownMs ?? 30_000,
      failureBackoffMs: options.jwksFailureBackoffMs ?? 10_000,
    }
    if (options.onJwksError) remote.onError = options.onJwksError
    keys = remoteJwks(remote)
  }

  const cacheSize = options.cacheSize ?? DEFAULT_TOKEN_CACHE_SIZE
  const cache = cacheSize > 0 ? new LRUCache<string, VerifiedToken>({ max: cacheSize }) : undefined

  const fail = (reason: 'token_invalid' | 'token_expired', detail: string): VerifyResult => ({ ok: false, reason, detail })

  return {
    async reload() {
      if (options.jwksFile !== undefined) {
        await loadFile(options.jwksFile)
        cache?.clear()
      }
    },
    async verify(token) {
      if (typeof token !== 'string' || token.length === 0) return fail('token_invalid', 'no token')
      if (Buffer.byteLength(token) > maxBytes) return fail('token_invalid', `token longer than ${maxBytes} bytes`)
      const nowMs = now()
      const key = cache ? createHash('sha256').update(token).digest('base64url') : ''
      const cached = cache?.get(key)
      if (cached) {
        // Expiry is judged on every use with the current clock, whatever the cache holds.
        if (cached.expiresAt + tolerance <= nowMs / 1000) {
          cache!.delete(key)
          return fail('token_expired', 'token has expired')
        }
        return { ok: true, token: cached }
      }
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms,
          clockTolerance: tolerance,
          currentDate: new Date(nowMs),
          requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        })
        if (payload.iat! > nowMs / 1000 + tolerance) return fail('token_invalid', 'token issued in the future')
        if (payload.exp! - payload.iat! > maxLifetime) return fail('token_invalid', `token lifetime over ${maxLifetime} s`)
        const verified = toVerified(payload, rolesClaim, tenantClaim, options.deviceClaim)
        cache?.set(key, verified)
        return { ok: true, token: verified }
      } catch (err) {
        if (err instanceof errors.JWTExpired) return fail('token_expired', 'token has expired')
        if (err instanceof ClaimError) return fail('token_invalid', err.message)
        const code = (err as { code?: string }).code
        return fail('token_invalid', code ? `rejected (${code})` : 'rejected')
      }
    },
  }
}
