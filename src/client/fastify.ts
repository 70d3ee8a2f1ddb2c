import type { FastifyReply, FastifyRequest } from 'fastify'
import type { DecisionInput } from '../engine/pdp.js'
import type { ClientDecision, PdpClient } from './pdp-client.js'
import { refusalFor } from './refusal.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The PDP's verdict, set by pdpFastifyHook before the handler runs. */
    pdpDecision?: ClientDecision
  }
}

export interface PdpFastifyHookOptions {
  client: PdpClient
  /** The question for this request. An error thrown here goes to Fastify's error handler (the request is not let through). */
  toInput(request: FastifyRequest): DecisionInput | Promise<DecisionInput>
}

/**
 * An async hook that asks the PDP about each request: on allow it sets `request.pdpDecision` and lets the
 * request continue; otherwise it answers 401 or 403 (see refusalFor). Register it as `onRequest` when the
 * input needs no body, or `preHandler` when it does.
 */
export function pdpFastifyHook(options: PdpFastifyHookOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  return async function pdpAuthorize(request, reply) {
    const decision = await options.client.decide(await options.toInput(request))
    request.pdpDecision = decision
    const refusal = refusalFor(decision)
    if (!refusal) return undefined
    // Returning the reply is how an async hook tells Fastify the request is answered.
    return reply.code(refusal.status).headers(refusal.headers).send(refusal.body)
  }
}
