import type { DecisionInput } from '../engine/pdp.js'
import type { ClientDecision, PdpClient } from './pdp-client.js'
import { refusalFor } from './refusal.js'

/** The part of a response the middleware writes to; node's ServerResponse and Express's Response both fit. */
export interface MiddlewareResponse {
  statusCode: number
  setHeader(name: string, value: string): unknown
  end(body: string): unknown
}

export type NextFunction = (error?: unknown) => void

export interface PdpMiddlewareOptions<Req> {
  client: PdpClient
  /** The question for this request. An error thrown here is passed to `next(error)` (the request is not let through). */
  toInput(req: Req): DecisionInput | Promise<DecisionInput>
}

/**
 * Express-style middleware (Express, Connect, or plain node:http with a hand-written `next`): on allow it sets
 * `req.pdpDecision` and calls `next()`; otherwise it answers 401 or 403 with a JSON body and does not call `next`.
 */
export function pdpMiddleware<Req extends object>(
  options: PdpMiddlewareOptions<Req>,
): (req: Req & { pdpDecision?: ClientDecision }, res: MiddlewareResponse, next: NextFunction) => void {
  return (req, res, next) => {
    const decide = async () => options.client.decide(await options.toInput(req))
    decide().then(
      (decision) => {
        req.pdpDecision = decision
        const refusal = refusalFor(decision)
        if (!refusal) return next()
        res.statusCode = refusal.status
        for (const [name, value] of Object.entries(refusal.headers)) res.setHeader(name, value)
        res.setHeader('content-type', 'application/json; charset=utf-8')
        res.end(JSON.stringify(refusal.body))
      },
      (error: unknown) => next(error),
    )
  }
}
