/** The PDP client for services (`zt-pdp/client`): no engine, no Fastify runtime. */
export {
  createPdpClient,
  DEFAULT_TIMEOUT_MS,
  PDP_UNAVAILABLE,
  type ClientDecision,
  type ClientPlan,
  type ClientReason,
  type PdpClient,
  type PdpClientOptions,
  type PdpFailure,
  type PdpFailureKind,
} from './pdp-client.js'
export { refusalFor, type Refusal, type RefusalBody } from './refusal.js'
export { pdpFastifyHook, type PdpFastifyHookOptions } from './fastify.js'
export { pdpMiddleware, type MiddlewareResponse, type NextFunction, type PdpMiddlewareOptions } from './middleware.js'
export {
  PlanFilterError,
  planRegexp,
  planPredicate,
  planToPrisma,
  planToSql,
  toPrismaWhere,
  toSqlWhere,
  type FieldMap,
  type PlanLike,
  type PrismaWhere,
  type SqlOptions,
  type SqlWhere,
} from './plan-filter.js'
export { describeFilter, isPlanFilter, matchesFilter, type FilterField, type FilterResource, type FilterScalar, type PlanFilter } from '../engine/plan/filter.js'
export type { BatchInput, BatchItem, DecisionInput, PlanInput } from '../engine/pdp.js'
export type { Plan, PlanKind } from '../engine/plan/settle.js'
export type { Decision, ReasonCode, StepUp, Verdict } from '../engine/types.js'
