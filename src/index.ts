/**
 * The package's public surface: the decision engine as a library (policy bundle, engine, state stores) and
 * the client for services. Services that only ask a running PDP import `zt-pdp/client`, which loads no engine.
 */
export {
  createPdp,
  type BatchInput,
  type BatchItem,
  type DecideOptions,
  type DecisionInput,
  type Pdp,
  type PdpComponents,
} from './engine/pdp.js'
export { assemblePdp, type AssembleOptions } from './compose.js'
export { buildPolicyBundle, loadPolicyBundle, type PolicyBundle } from './engine/policy/bundle.js'
export { readPolicySnapshot, type PolicySnapshot } from './engine/policy/policy-snapshot.js'
export {
  PolicySource,
  type PolicySourceOptions,
  type PolicyStatus,
  type ReloadResult,
  type WatchOptions,
  type WatchState,
  type WatchStatus,
} from './engine/policy/policy-source.js'
export type {
  DecisionFacts,
  DecisionLog,
  DecisionLogEntry,
  DecisionSource,
  DeviceState,
  Gate,
  GateContext,
  GateItem,
  GateOutcome,
  PdpMetrics,
  RiskFindings,
  TokenVerifier,
  VerifiedToken,
  VerifyResult,
} from './engine/ports.js'
export type { GeoLookup } from './engine/risk/geo.js'
export {
  REASON_CODES,
  SENSITIVITIES,
  STEP_UP_LEVELS,
  type Clock,
  type Decision,
  type DecisionRequest,
  type ReasonCode,
  type RequestContext,
  type Resource,
  type Sensitivity,
  type StepUp,
  type StepUpLevel,
  type Subject,
  type Verdict,
} from './engine/types.js'
export { createStateStore, MemoryStateStore, StoreUnavailableError, type StateStore, type StateStoreOptions } from './store/index.js'
export { RedisStateStore } from './store/redis-store.js'
export * from './client/index.js'
export {
  createResponder,
  responseGate,
  SECURITY_EVENT_TYPES,
  type EventOutcome,
  type Responder,
  type ResponderOptions,
  type SecurityEvent,
  type SecurityEventType,
} from './response/index.js'
