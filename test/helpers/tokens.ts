import { base64url, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'
import { createHmac, createPublicKey, randomUUID } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const ISSUER = 'https://idp.example.test'
export const AUDIENCE = 'pdp'

export interface Issuer {
  publicJwk: JWK
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']
  jwks: { keys: JWK[] }
  /** Signs a token with sensible defaults: 5 minutes, a fresh jti, issued now (by the given clock). */
  sign(claims?: JWTPayload, options?: { nowMs?: number; lifetimeSec?: number; kid?: string; header?: Record<string, unknown> }): Promise<string>
  /** A JWKS file with the public key, for PDP_JWKS_FILE. */
  jwksFile(): Promise<string>
}

export async function createIssuer(kid = 'k1'): Promise<Issuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true })
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }
  const jwks = { keys: [publicJwk] }
  return {
    publicJwk,
    privateKey,
    jwks,
    async sign(claims = {}, options = {}) {
      const iat = Math.floor((options.nowMs ?? Date.now()) / 1000)
      return new SignJWT({ jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? kid, ...options.header })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject((claims.sub as string | undefined) ?? 'carol')
        .setIssuedAt(iat)
        .setExpirationTime(iat + (options.lifetimeSec ?? 300))
        .sign(privateKey)
    },
    async jwksFile() {
      const dir = await mkdtemp(join(tmpdir(), 'pdp-jwks-'))
      const file = join(dir, 'jwks.json')
      await writeFile(file, JSON.stringify(jwks))
      return file
    },
  }
}

/**
 * Every class of bad token, each with the reason the PDP must give, for `issuer`'s key (kid k1) and a
 * verifier that reads roles at `realm_access.roles` and whose clock reads `now`.
 */
export async function tokenFailures(issuer: Issuer, now: number): Promise<[string, string, 'token_invalid' | 'token_expired'][]> {
  const other = await createIssuer('k1')
  const good = await issuer.sign({}, { nowMs: now })
  const [h, p, s] = good.split('.') as [string, string, string]
  const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p)))
  const tampered = `${h}.${base64url.encode(JSON.stringify({ ...payload, sub: 'admin' }))}.${s}`
  const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${p}.`
  // Algorithm confusion: HS256 keyed with the RSA public key's bytes.
  const pem = createPublicKey({ key: issuer.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' })
  const hsHeader = base64url.encode(JSON.stringify({ alg: 'HS256', kid: 'k1', typ: 'JWT' }))
  const hsSig = createHmac('sha256', pem).update(`${hsHeader}.${p}`).digest('base64url')
  const confused = `${hsHeader}.${p}.${hsSig}`
  const embedded = await new SignJWT({ jti: 'x' })
    .setProtectedHeader({ alg: 'RS256', jwk: other.publicJwk })
    .setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('carol').setIssuedAt(now / 1000).setExpirationTime(now / 1000 + 60)
    .sign(other.privateKey)

  const cases: [string, string | Promise<string>, 'token_invalid' | 'token_expired'][] = [
    ['expired', issuer.sign({}, { nowMs: now - 600_000 }), 'token_expired'],
    ['not yet valid (nbf)', issuer.sign({ nbf: now / 1000 + 600 }, { nowMs: now }), 'token_invalid'],
    ['issued in the future', issuer.sign({}, { nowMs: now + 600_000, lifetimeSec: 300 }), 'token_invalid'],
    ['wrong audience', new SignJWT({ jti: 'j' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setAudience('other').setSubject('c').setIssuedAt(now / 1000).setExpirationTime(now / 1000 + 60).sign(issuer.privateKey), 'token_invalid'],
    ['wrong issuer', new SignJWT({ jti: 'j' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer('https://evil').setAudience(AUDIENCE).setSubject('c').setIssuedAt(now / 1000).setExpirationTime(now / 1000 + 60).sign(issuer.privateKey), 'token_invalid'],
    ['alg none', none, 'token_invalid'],
    ['HMAC signed with the public key', confused, 'token_invalid'],
    ['unknown kid', issuer.sign({}, { nowMs: now, kid: 'k-unknown' }), 'token_invalid'],
    ['another key with the same kid', other.sign({}, { nowMs: now }), 'token_invalid'],
    ['tampered payload', tampered, 'token_invalid'],
    ['tampered signature', `${h}.${p}.${s.slice(0, -4)}AAAA`, 'token_invalid'],
    ['over-long lifetime', issuer.sign({}, { nowMs: now, lifetimeSec: 3600 }), 'token_invalid'],
    ['missing jti', new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject('c').setIssuedAt(now / 1000).setExpirationTime(now / 1000 + 60).sign(issuer.privateKey), 'token_invalid'],
    ['roles not an array of strings', issuer.sign({ realm_access: { roles: 'admin' } }, { nowMs: now }), 'token_invalid'],
    ['amr not an array', issuer.sign({ amr: 'hwk' }, { nowMs: now }), 'token_invalid'],
    // Claims that would become store keys must obey the identifier rule of request bodies (issue 14).
    ['sub with an unpaired surrogate', issuer.sign({ sub: '\ud800' }, { nowMs: now }), 'token_invalid'],
    ['sub with a control character', issuer.sign({ sub: 'carol\u0000' }, { nowMs: now }), 'token_invalid'],
    ['jti with an unpaired surrogate', issuer.sign({ jti: 'j\udfff' }, { nowMs: now }), 'token_invalid'],
    ['sid with an unpaired surrogate', issuer.sign({ sid: '\udc00' }, { nowMs: now }), 'token_invalid'],
    ['tenant with an unpaired surrogate', issuer.sign({ tenant: 'acme\ud834' }, { nowMs: now }), 'token_invalid'],
    ['a role with a line break', issuer.sign({ realm_access: { roles: ['admin\n'] } }, { nowMs: now }), 'token_invalid'],
    ['amr with an unpaired surrogate', issuer.sign({ amr: ['pwd', '\ud800'] }, { nowMs: now }), 'token_invalid'],
    ['embedded jwk header', embedded, 'token_invalid'],
    ['garbage', 'not.a.token', 'token_invalid'],
    ['empty', '', 'token_invalid'],
    ['oversized', 'a'.repeat(9000), 'token_invalid'],
  ]
  return Promise.all(cases.map(async ([name, token, reason]) => [name, await token, reason] as [string, string, 'token_invalid' | 'token_expired']))
}
