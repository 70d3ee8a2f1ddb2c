import fp from 'fastify-plugin'
import type { TokenVerifier } from '../engine/identity.js'
import { createTokenVerifier, type TokenVerifierOptions } from '../identity/token-verifier.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Verifies JWTs from the configured issuer; undefined when no issuer is configured. */
    tokenVerifier: TokenVerifier | undefined
  }
}

/** Builds the token verifier when an issuer is configured (a partial configuration stops start-up). */
export default fp<{ verifier?: TokenVerifierOptions }>(
  async (app, opts) => {
    app.decorate('tokenVerifier', opts.verifier ? await createTokenVerifier(opts.verifier) : undefined)
  },
  { name: 'identity' },
)
