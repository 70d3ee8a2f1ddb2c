/**
 * The engine's ports: everything it needs from the outside, declared here and implemented elsewhere
 * (gates in src/identity and src/response, drivers in src/store, token verification in src/identity,
 * metrics and the decision log in the service). The engine imports nothing outside src/engine.
 */
import type { PolicyBundle } from './policy/bundle.js'
import type { Plan } from './plan/settle.js'
import type {
  Decision,
  DecisionRequest,
  DeviceContext,
  ReasonCode,
  RiskAssessment,
  Sensitivity,
  SessionContext,
  StepUp,
  StepUpLevel,
  Subject,
  Verdict,
} from './types.js'

// ---- What a decision is about

/**
 * The facts of one decision, built once from the request (and its verified token): who asks, in which tenant,
 * from which address and device, in which session (its authentication time gives the authentication's age),
 * about which resource and action. The gates' and the risk engine's inputs and the risk findings are views of it.
 */
export interface DecisionFacts {
  subjectId: string
  /** Casbin domain: the subject's tenant, or the default one. */
  tenant: string
  /** The verified token, when the subject came from one (its claims, jti, issue time). */
  token?: VerifiedToken
  /** The client address as the request reports it. */
  ip?: string
  /** The device and its posture; a device the identity provider names outranks the caller's. */
  device?: DeviceContext
  /** The session; from the token when there is one (the caller's claims about it are not believed then). */
  session?: SessionContext
  /** A sensitivity the caller asserts (forward-auth's route map), over risk.yaml's for the resource. */
  sensitivity?: Sensitivity
  /** The (first) resource type and action asked about: the ones the baselines learn from. */
  resourceType: string
  action: string
  /** Epoch ms. */
  now: number
}

/**
 * The request's device as the store knows it, read once per decision and shared by the steps that need it
 * (the sessions gate's idle time-out, the device-trust signal).
 */
export interface DeviceState {
  /** The stored record (trust, first and last sighting, remembered step-up); undefined without a device. */
  readonly record: Pending<Record<string, string>> | undefined
  /** The device's trust for this request, 0-100; readable once the batch ran. */
  readonly trust: number
}

// ---- Gates: store-backed checks in the decision's one round trip

/** One store-backed check that runs in the decision's single store round trip (revocation, grants, lockouts ...). */
export interface Gate {
  readonly name: string
  /** Queues the reads and writes the check needs; the returned function reads their results after exec, per item asked about. */
  prepare(context: GateContext, batch: StoreBatch): (item: GateItem) => GateOutcome
}

/** The resource and action one verdict is for (a batch asks about several with one context). */
export interface GateItem {
  resourceType: string
  resourceId?: string
  action: string
}

export interface GateContext {
  facts: DecisionFacts
  device: DeviceState
  /** The policy this decision uses (time-outs, grant rules, risk knobs). */
  bundle: PolicyBundle
}

export interface GateOutcome {
  /** A hard deny (revoked token, locked account ...): the policy is not consulted. */
  deny?: ReasonCode
  /** Ask for a step-up at this level (an idle session, a flagged address ...) when the policy allows. */
  stepUp?: { reason: ReasonCode; level: StepUpLevel }
  /** Writes to run after the decision, off the hot path (activity timestamps, lazy clean-up). */
  followUp?: (batch: StoreBatch) => void
  /** Roles granted for this request only (just-in-time grants in scope). */
  roles?: string[]
  /** Single permissions granted for this request (resource type + action in scope). */
  permissionGranted?: boolean
  /**
   * Asked about a resource type without an id (a plan), the gate holds something for single resources of it (a grant
   * scoped to one resource id) that a type-wide answer cannot show: a plan then says so rather than leave them out.
   */
  scopedToResources?: string
}

// ---- Risk

/** The risk engine as the PDP uses it: prepare in the shared batch, assess after it ran. */
export interface PdpRisk {
  prepare(input: RiskInput, batch: StoreBatch): PreparedRisk
}

export interface PreparedRisk {
  /** Scores the prepared request; `target` re-scores it for another resource and action (batch items). */
  assess(target?: { resourceType: string; action: string }): RiskOutcome
}

export interface RiskInput {
  facts: DecisionFacts
  device: DeviceState
}

export interface RiskOutcome {
  verdict: Verdict
  reasons: ReasonCode[]
  assessment: RiskAssessment
  stepUp?: StepUp
  followUp?: (batch: StoreBatch) => void
}

/** What the risk engine found about one decision, for automated response. */
export interface RiskFindings {
  facts: DecisionFacts
  reasons: ReasonCode[]
  assessment: RiskAssessment
  /** The policy revision the decision used: its response rules judge these findings. */
  bundle: PolicyBundle
}

// ---- Token verification

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

// ---- Decision log

/** The request as decided on; without a subject when a token failed verification (the token itself is never kept). */
export type LoggedRequest = Omit<DecisionRequest, 'subject'> & { subject?: Subject }

/** One decision as the audit stream records it. */
export interface DecisionLogEntry {
  request: LoggedRequest
  decision: Decision
  /** Epoch milliseconds when the decision was made. */
  time: number
  latencyMs: number
  requestId?: string
  /** The W3C trace id the request came with, so a decision joins its distributed trace. */
  traceId?: string
  /** Which front door asked: the JSON API, a gateway's forward-auth call, a batch, the CLI. */
  source?: DecisionSource
  /** The shadow (candidate) policy's verdict, when it differs from the one returned. */
  shadow?: ShadowVerdict
  /** For a plan (source `plan`): what it answered for the resource type; `decision` then holds its verdict for an allowed resource. */
  plan?: PlanLog
}

export type PlanLog = Pick<Plan, 'filter' | 'unsupported'> & { kind: Plan['plan'] }

export interface ShadowVerdict {
  policyVersion: string
  decision: Decision['decision']
  reasons: Decision['reasons']
}

export type DecisionSource = 'http' | 'forward_auth' | 'batch' | 'cli' | 'plan'

/**
 * Where decisions are recorded. Entries are built lazily so that a disabled or sampling
 * sink costs nothing on the hot path; a sink must never block or throw into the caller.
 */
export interface DecisionLog {
  write(make: () => DecisionLogEntry): void
}

export const noDecisionLog: DecisionLog = { write() {} }

// ---- Metrics

export interface DecisionObservation {
  verdict: Verdict
  /** The first reason: the one that decided. */
  reason: ReasonCode
  seconds: number
  riskScore?: number
  stepUpLevel?: StepUpLevel
}

/** What the engine reports about itself; the service implements it with Prometheus, tests may count calls. */
export interface PdpMetrics {
  decision(observation: DecisionObservation): void
  /** One store round trip: how long it took and whether it failed. */
  storeCall(seconds: number, ok: boolean): void
  /** The shadow policy would have answered `to` where the active one answered `from`. */
  shadowMismatch(from: Verdict, to: Verdict): void
}

export const noMetrics: PdpMetrics = { decision() {}, storeCall() {}, shadowMismatch() {} }

// ---- State store

/*
 * One interface for all state the PDP keeps between decisions: device registry, last locations,
 * behaviour baselines, revocations, grants, lockouts, event windows.
 *
 * Everything goes through batches: callers queue the reads and writes one decision needs and run
 * them in a single round trip (one Lua script call on Redis; on Redis Cluster one per hash slot, in
 * parallel). Writes are expressed as atomic
 * primitives that return the previous or resulting value (getSet, incrBy, sAdd ...), so replicas
 * sharing one Redis never race on a read-modify-write.
 *
 * Keys are plain strings chosen by callers, each id through keyPart (`risk:dev:{alice}:laptop-1`); drivers add their own prefix.
 * The id a key belongs to (a subject, an address, a token or session id) is its hash tag, through keyTag: on Redis
 * Cluster all of one subject's keys share a slot, so a driver can update them in one atomic script.
 * TTLs are in milliseconds and bound how long a key lives after its last write; logic that depends
 * on time (expiry of a grant, a lockout's end) keeps its own timestamps and compares them with the
 * injected clock, so it does not depend on the store's clock.
 */

/** A value that becomes readable once its batch has run. */
export interface Pending<T> {
  readonly value: T
}

export interface StoreBatch {
  get(key: string): Pending<string | null>
  set(key: string, value: string, ttlMs: number): void
  /** Sets only when absent; resolves true when this call set it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Pending<boolean>
  /** Sets and returns the previous value. */
  getSet(key: string, value: string, ttlMs: number): Pending<string | null>
  del(key: string): Pending<number>
  incrBy(key: string, by: number, ttlMs: number): Pending<number>
  /**
   * Fields by name, in an object without a prototype: a field named "constructor" or "__proto__" is just a field.
   * Read it, never change it: drivers may answer one shared, frozen object for every hash that does not exist.
   */
  hGetAll(key: string): Pending<Record<string, string>>
  hSet(key: string, fields: Record<string, string>, ttlMs: number): void
  hDel(key: string, field: string): Pending<number>
  hIncrBy(key: string, field: string, by: number, ttlMs: number): Pending<number>
  /** Adds `by` to a numeric hash field (missing counts as `initial`) and clamps to [min, max]; returns the new value. */
  hIncrClamped(key: string, field: string, by: number, initial: number, min: number, max: number, ttlMs: number): Pending<number>
  /** Resolves true when the member was not in the set before. */
  sAdd(key: string, member: string, ttlMs: number): Pending<boolean>
  sRem(key: string, member: string): Pending<number>
  sMembers(key: string): Pending<string[]>
  sCard(key: string): Pending<number>
  zAdd(key: string, score: number, member: string, ttlMs: number): void
  zRemRangeByScore(key: string, min: number, max: number): Pending<number>
  zCount(key: string, min: number, max: number): Pending<number>
  /** Members with min <= score <= max, lowest score first. */
  zRangeByScore(key: string, min: number, max: number): Pending<string[]>
  /** Remaining time to live in ms: -1 when the key has none, -2 when it does not exist. */
  pTtl(key: string): Pending<number>
  /**
   * Runs every queued operation in one round trip, atomically (on Redis Cluster: atomically per hash slot,
   * that is per keyTag). Rejects with StoreUnavailableError when the store does not answer within its
   * time-out; then no Pending value may be read, and a cluster may have applied some slots' operations.
   */
  exec(): Promise<void>
}

export interface BatchOptions {
  /**
   * Writes no decision waits for (activity, learning, clean-up). A store may hold such a batch briefly (Redis: until
   * its next call, at most until the end of this turn of the event loop) and send it together with other writes, so
   * that it costs no round trip of its own. It still applies before every batch executed after it.
   */
  background?: boolean
}

export interface StateStore {
  readonly kind: 'memory' | 'redis'
  batch(options?: BatchOptions): StoreBatch
  /** Resolves when the store answers within its time-out; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>
  close(): Promise<void>
}

const UNRESERVED = /^[A-Za-z0-9\-_.!~*'()]*$/

/**
 * One component of a store key, URI-encoded so that an id holding ":" can never collide with another key.
 * encodeURIComponent throws on an unpaired surrogate; the HTTP schemas and the token verifier keep those
 * out, and for callers of the engine library they are written as %uXXXX, a form encodeURIComponent never
 * produces (it escapes "%" itself), so the encoding stays total and free of collisions.
 */
export function keyPart(value: string): string {
  // Most ids are already what encodeURIComponent would return (letters, digits, "-_.!~*'()"): keep the string itself.
  if (UNRESERVED.test(value)) return value
  try {
    return encodeURIComponent(value)
  } catch {
    return value.replace(/\p{Cs}|\P{Cs}+/gu, (run) =>
      /\p{Cs}/u.test(run) ? `%u${run.charCodeAt(0).toString(16).toUpperCase()}` : encodeURIComponent(run),
    )
  }
}

/** The id keyTag was last asked for, and its tag. */
let lastTagged: string | undefined
let lastTag = ''

/**
 * The component of a store key naming whom the key belongs to, as a Redis Cluster hash tag: `{alice}`. Redis hashes
 * only what stands between a key's first "{" and the next "}", so keys with the same tag share a slot. keyPart escapes
 * braces, so an id can neither end its own tag early nor open a second one; an empty id becomes "%", which keyPart
 * never produces alone, because an empty tag would make Redis hash the whole key.
 */
export function keyTag(value: string): string {
  // A decision builds a dozen keys for one subject in a row: the last tag is kept rather than escaped and joined again.
  if (value !== lastTagged) {
    lastTag = `{${keyPart(value) || '%'}}`
    lastTagged = value
  }
  return lastTag
}

/**
 * The decision steps a tracer can time. The engine knows nothing of OpenTelemetry: it runs each step
 * through this port, and the service plugs in spans when tracing is on.
 */
export type DecisionStep = 'policy' | 'risk'

export interface DecisionTracer {
  /** Runs one synchronous step of a decision, as a child of whatever span is current. */
  step<T>(name: DecisionStep, run: () => T): T
}

export const noDecisionTracer: DecisionTracer = { step: (_name, run) => run() }
