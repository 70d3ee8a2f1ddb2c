import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'
import { randomUUID } from 'node:crypto'
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
