import fp from 'fastify-plugin'
import type { TokenVerifier } from '../engine/ports.js'
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
    const options = opts.verifier && { ...opts.verifier, onJwksError: (message: string) => app.log.warn(message) }
    app.decorate('tokenVerifier', options ? await createTokenVerifier(options) : undefined)
  },
  { name: 'identity' },
)
