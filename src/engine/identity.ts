/**
 * What the engine needs from token verification. The implementation (jose, JWKS, caching) lives in
 * src/identity; the engine only sees verified facts or a failure reason.
 */

export interface VerifiedToken {
  subject: { id: string; roles: string[]; tenant?: string }
  session: { id?: string; authTime?: number; amr?: string[]; acr?: string }
  /** The device the identity provider vouches for (a configured claim), when it names one. */
  deviceId?: string
  jti: string
  /** Epoch seconds. */
  issuedAt: number
  /** Epoch seconds. */
  expiresAt: number
  claims: Record<string, unknown>
}

export type TokenFailure = 'token_invalid' | 'token_expired'

export type VerifyResult = { ok: true; token: VerifiedToken } | { ok: false; reason: TokenFailure; detail: string }

export interface TokenVerifier {
  /** Never throws; `detail` never contains the token or key material. */
  verify(token: string): Promise<VerifyResult>
}
