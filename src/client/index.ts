/** The PDP client for services (`zt-pdp/client`): no engine, no Fastify runtime. */
export {
  createPdpClient,
  DEFAULT_TIMEOUT_MS,
  PDP_UNAVAILABLE,
  type ClientDecision,
  type ClientReason,
  type PdpClient,
  type PdpClientOptions,
  type PdpFailure,
  type PdpFailureKind,
} from './pdp-client.js'
export { refusalFor, type Refusal, type RefusalBody } from './refusal.js'
export { pdpFastifyHook, type PdpFastifyHookOptions } from './fastify.js'
export { pdpMiddleware, type MiddlewareResponse, type NextFunction, type PdpMiddlewareOptions } from './middleware.js'
export type { BatchInput, BatchItem, DecisionInput } from '../engine/pdp.js'
export type { Decision, ReasonCode, StepUp, Verdict } from '../engine/types.js'
