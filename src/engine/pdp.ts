import { decisionId } from './ids.js'
import type { PolicyBundle } from './policy/bundle.js'
import type { PolicyEnv, PolicyQuery } from './policy/evaluator.js'
import {
  noDecisionLog,
  noDecisionTracer,
  noMetrics,
  type DecisionFacts,
  type DecisionLog,
  type DecisionLogEntry,
  type DecisionObservation,
  type DecisionSource,
  type Gate,
  type GateContext,
  type GateItem,
  type GateOutcome,
  type LoggedRequest,
  type PdpMetrics,
  type PdpRisk,
  type PreparedRisk,
  type RiskFindings,
  type RiskOutcome,
  type ShadowVerdict,
  type StateStore,
  type StoreBatch,
  type DecisionTracer,
  type TokenVerifier,
  type VerifiedToken,
} from './ports.js'
import { settlePlan, type Plan } from './plan/settle.js'
import { readOnlyBatch } from './read-only-batch.js'
import { readDevice } from './risk/device-trust.js'
import type { Clock, Decision, DecisionRequest, ReasonCode, StepUp, StepUpLevel, Subject, Verdict } from './types.js'
import { combineGates, combineVerdict, consultsPolicy, NO_GATES, type StoreOutcome, type VerdictInputs } from './verdict.js'

export interface PdpComponents {
  /** The active policy; read once per decision so a reload never splits one decision across two policies. */
  policy: { readonly current: PolicyBundle }
  /**
   * A candidate policy evaluated beside the active one on every decision (shadow rollout): its verdict is
   * never returned, only logged and counted when it differs. Gates and risk findings are shared with the
   * active decision; the candidate's policy files decide its policy part.
   */
  shadow?: { readonly current: PolicyBundle }
  now: Clock
  /** Casbin domain for requests that name no tenant. */
  defaultTenant: string
  decisionLog?: DecisionLog
  metrics?: PdpMetrics
  /** Verifies tokens sent instead of a subject; without it, token requests are denied. */
  tokens?: TokenVerifier
  /** State for gates and risk; without it, neither runs. */
  store?: StateStore
  gates?: Gate[]
  /** The risk engine for a policy bundle (it follows policy reloads, so it is asked per decision). */
  risk?: (bundle: PolicyBundle) => PdpRisk | undefined
  /** What a decision becomes when the store fails: `closed` denies, `open` keeps the policy verdict but asks for a step-up. */
  storeFailure?: 'closed' | 'open'
  /** The step-up for a level under a bundle's risk policy (used for store failures and gate step-ups). */
  stepUpFor?: (bundle: PolicyBundle, level: StepUpLevel) => StepUp
  /** Receives errors that must not fail a decision (follow-up writes). */
  onBackgroundError?: (error: unknown) => void
  /** Told about every risk assessment (after the answer is decided), e.g. for automated response to account takeover. */
  onRiskFindings?: (findings: RiskFindings) => void
  /** Runs the policy evaluation and the risk assessment as traced steps; nothing by default. */
  tracer?: DecisionTracer
}

/** A decision request as callers send it: a trusted subject, or a token the PDP verifies itself. */
export interface DecisionInput extends Omit<DecisionRequest, 'subject'> {
  subject?: Subject
  token?: string
}

export interface DecideOptions {
  /** Evaluate as of this time (epoch ms) instead of the clock's. */
  now?: number
  requestId?: string
  traceId?: string
  source?: DecisionSource
  /**
   * The policy revision to decide under, when the caller already read it (forward-auth picks the route from
   * its route map); the active one otherwise.
   */
  bundle?: PolicyBundle
  /**
   * The caller authenticated as a service trusted to assert subjects. A decision about a subject the PDP did not
   * verify itself (no token) and that no trusted caller vouched for is answered as any other, but changes no state:
   * it learns nothing (devices, locations, behaviour, sessions) and triggers no automated response.
   */
  callerTrusted?: boolean
}

/** A plan request: a decision request about a resource type rather than one resource. */
export interface PlanInput extends Omit<DecisionInput, 'resource' | 'explain'> {
  resource: { type: string }
}

export interface Pdp {
  decide(input: DecisionInput, options?: DecideOptions): Promise<Decision>
  /** Which resources of a type the subject may act on: all, none, or those a filter selects (see plan/filter.ts). */
  plan(input: PlanInput, options?: DecideOptions): Promise<Plan>
  /** Many (resource, action) pairs for one subject and context; risk is assessed once. */
  decideBatch(input: BatchInput, items: readonly BatchItem[], options?: DecideOptions): Promise<Decision[]>
}

export type BatchInput = Omit<DecisionInput, 'action' | 'resource'>

function environment(nowMs: number, ip: string | undefined): PolicyEnv {
  const date = new Date(nowMs)
  return { time: Math.floor(nowMs / 1000), hour: date.getUTCHours(), weekday: date.getUTCDay(), ip: ip ?? '' }
}

export function toPolicyQuery(request: DecisionRequest, defaultTenant: string, nowMs: number): PolicyQuery {
  const tenant = request.subject.tenant ?? defaultTenant
  return {
    subject: {
      id: request.subject.id,
      roles: request.subject.roles ?? [],
      tenant,
      attributes: request.subject.attributes ?? {},
    },
    domain: tenant,
    resource: {
      type: request.resource.type,
      id: request.resource.id ?? '',
      attributes: request.resource.attributes ?? {},
    },
    action: request.action,
    env: environment(nowMs, request.context?.ip),
    ...(request.context?.http ? { http: request.context.http } : {}),
  }
}

function withoutCredentials(input: DecisionInput): LoggedRequest {
  const { token: _token, subject: _subject, ...rest } = input
  return rest
}

type FollowUp = (batch: StoreBatch) => void

/** The request the engine decides on, once a token (if any) has been verified. */
function fromToken(input: DecisionInput, token: VerifiedToken): DecisionRequest {
  const subject: Subject = { id: token.subject.id, roles: token.subject.roles }
  if (token.subject.tenant !== undefined) subject.tenant = token.subject.tenant
  const request: DecisionRequest = { subject, action: input.action, resource: input.resource }
  // The token's authentication facts are verified; the caller's claims about the session are not.
  request.context = { ...input.context, session: { ...token.session } }
  // A device the identity provider names outranks one the caller names; the caller's posture report stays only for the same device.
  if (token.deviceId !== undefined) {
    const reported = input.context?.device
    request.context.device = reported?.id === token.deviceId ? reported : { id: token.deviceId }
  }
  if (input.explain !== undefined) request.explain = input.explain
  return request
}

/** One (resource, action) question within a batch sharing subject, context, token and risk assessment. */
export interface BatchItem {
  action: string
  resource: DecisionRequest['resource']
}

/** What createPdp settles once: the components with their defaults. */
interface Engine {
  components: PdpComponents
  log: DecisionLog
  metrics: PdpMetrics
  gates: Gate[]
  failure: 'closed' | 'open'
  tracer: DecisionTracer
}

/** One call's context: when it was asked, under which policies, how it is recorded. */
interface Run {
  engine: Engine
  options: DecideOptions
  started: number
  now: number
  /** Read once per call, so a reload never splits one call's decisions across two policies. */
  bundle: PolicyBundle
  shadow: PolicyBundle | undefined
  /** The subject decided for, once a token named it. */
  subject?: Decision['subject']
}

/** Whom a call is about: a request with a trusted subject or a verified token's, or the reason there is none. */
type Established = { request: DecisionRequest; token?: VerifiedToken } | { refused: ReasonCode }

/** What the one store round trip left for the items: each gate's reader, the prepared risk, and whether it failed. */
interface StateRead {
  gates: ((item: GateItem) => GateOutcome)[]
  risk?: PreparedRisk
  store: StoreOutcome
}

function startRun(engine: Engine, options: DecideOptions): Run {
  const { components } = engine
  return {
    engine,
    options,
    started: performance.now(),
    now: options.now ?? components.now(),
    bundle: options.bundle ?? components.policy.current,
    shadow: components.shadow?.current,
  }
}

/** A decision's common part: verdict, id, reasons, the policy version, and the subject a token named. */
function stamp(run: Run, verdict: Verdict, reasons: ReasonCode[], policyVersion = run.bundle.version): Decision {
  const decision: Decision = { decision: verdict, decisionId: decisionId(run.now), reasons, policyVersion }
  if (run.subject) decision.subject = run.subject
  return decision
}

/** Counts the decision and writes its decision-log line. */
function finish(run: Run, request: LoggedRequest, decision: Decision, shadowed?: ShadowVerdict): Decision {
  const { options, engine } = run
  const latencyMs = performance.now() - run.started
  const observation: DecisionObservation = { verdict: decision.decision, reason: decision.reasons[0]!, seconds: latencyMs / 1000 }
  if (decision.risk) observation.riskScore = decision.risk.score
  if (decision.decision === 'step_up' && decision.stepUp) observation.stepUpLevel = decision.stepUp.level
  engine.metrics.decision(observation)
  engine.log.write(() => {
    const entry: DecisionLogEntry = { request, decision, time: run.now, latencyMs }
    if (options.requestId !== undefined) entry.requestId = options.requestId
    if (options.traceId !== undefined) entry.traceId = options.traceId
    if (options.source !== undefined) entry.source = options.source
    if (shadowed) entry.shadow = shadowed
    return entry
  })
  return decision
}

/** Verifies the token, if the call sent one; a call must send a subject or a token, never both. */
async function establish(input: DecisionInput, tokens: TokenVerifier | undefined): Promise<Established> {
  if (input.token !== undefined) {
    if (input.subject !== undefined) throw new TypeError('send either a subject or a token, not both')
    if (!tokens) return { refused: 'token_invalid' }
    const verified = await tokens.verify(input.token)
    if (!verified.ok) return { refused: verified.reason }
    return { request: fromToken(input, verified.token), token: verified.token }
  }
  if (input.subject !== undefined) return { request: input as DecisionRequest }
  throw new TypeError('a decision needs a subject or a token')
}

/** The facts of the decision, read from the request once; every later step takes them from here. */
export function decisionFacts(request: DecisionRequest, token: VerifiedToken | undefined, defaultTenant: string, now: number): DecisionFacts {
  const context = request.context ?? {}
  const facts: DecisionFacts = {
    subjectId: request.subject.id,
    tenant: request.subject.tenant ?? defaultTenant,
    resourceType: request.resource.type,
    action: request.action,
    now,
  }
  if (token) facts.token = token
  if (context.ip !== undefined) facts.ip = context.ip
  if (context.device !== undefined) facts.device = context.device
  if (context.session !== undefined) facts.session = context.session
  if (context.sensitivity !== undefined) facts.sensitivity = context.sensitivity
  return facts
}

/**
 * The one store round trip for every gate and the risk engine: the device is read once for both; a subject
 * nobody vouched for is decided on a batch that writes nothing.
 */
async function readState(run: Run, facts: DecisionFacts, learns: boolean): Promise<StateRead> {
  const { components, gates, metrics, failure } = run.engine
  const risk = components.risk?.(run.bundle)
  if (!components.store || (gates.length === 0 && !risk)) return { gates: [], store: 'ok' }
  const batch = learns ? components.store.batch() : readOnlyBatch(components.store.batch())
  const device = readDevice(facts.subjectId, facts.device, run.bundle.risk, batch)
  const context: GateContext = { facts, device, bundle: run.bundle }
  const read: StateRead = { gates: gates.map((gate) => gate.prepare(context, batch)), store: 'ok' }
  const prepared = risk?.prepare({ facts, device }, batch)
  if (prepared) read.risk = prepared
  const storeStarted = performance.now()
  try {
    await batch.exec()
    metrics.storeCall((performance.now() - storeStarted) / 1000, true)
  } catch {
    metrics.storeCall((performance.now() - storeStarted) / 1000, false)
    read.store = failure === 'closed' ? 'failed_closed' : 'failed_open'
  }
  return read
}

/**
 * Scores the first item (baselines learn from every decision, so risk state is read and updated even when the
 * policy denies) and, for a subject whose identity was vouched for, queues the risk engine's writes and reports
 * its findings.
 */
function assessRisk(run: Run, facts: DecisionFacts, state: StateRead, learns: boolean, later: FollowUp[]): RiskOutcome | undefined {
  if (!state.risk || state.store !== 'ok') return undefined
  const risk = state.risk
  const assessed = run.engine.tracer.step('risk', () => risk.assess())
  if (!learns) return assessed
  if (assessed.followUp) later.push(assessed.followUp)
  run.engine.components.onRiskFindings?.({ facts, reasons: assessed.reasons, assessment: assessed.assessment, bundle: run.bundle })
  return assessed
}

/** Writes that wait for no answer (activity, learning, clean-up), in one batch after the decisions. */
function runLater(engine: Engine, later: FollowUp[]): void {
  const { store, onBackgroundError } = engine.components
  if (later.length === 0 || !store) return
  const batch = store.batch({ background: true })
  for (const write of later) write(batch)
  batch.exec().catch((err: unknown) => onBackgroundError?.(err))
}

/** One item's question, as the policy evaluator is asked it and as the decision log records it. */
interface ItemRequest {
  request: DecisionRequest
  query: PolicyQuery
}

/** The decision a policy gives one item, once the gates', the store's and the risk engine's outcomes are combined with it. */
function settle(run: Run, policy: PolicyBundle, item: ItemRequest, inputs: Omit<VerdictInputs, 'policy'>, withExplanation: boolean): Decision {
  const result = run.engine.tracer.step('policy', () => policy.evaluator.evaluate(item.query, withExplanation))
  // Built field by field: spreading an object whose optional fields vary takes V8's slow path on every decision.
  const asked: VerdictInputs = { store: inputs.store, gates: inputs.gates, policy: result.effect }
  if (inputs.risk) asked.risk = inputs.risk
  const outcome = combineVerdict(asked)
  const decision = stamp(run, outcome.verdict, outcome.reasons, policy.version)
  if (withExplanation) decision.explanation = { effectiveRoles: result.roles ?? [], matchedRules: result.matched, domain: item.query.domain }
  if (outcome.risk) decision.risk = outcome.risk
  const stepUpFor = run.engine.components.stepUpFor
  if (outcome.stepUpLevel && stepUpFor) decision.stepUp = stepUpFor(run.bundle, outcome.stepUpLevel)
  else if (outcome.stepUp) decision.stepUp = outcome.stepUp
  return decision
}

/** One item's decision under the active policy, compared with the shadow policy's when one is being rolled out. */
function decideItem(run: Run, item: ItemRequest, inputs: Omit<VerdictInputs, 'policy'>, explain: boolean): Decision {
  if (!consultsPolicy(inputs.store, inputs.gates)) {
    const refused = combineVerdict(inputs)
    return finish(run, item.request, stamp(run, refused.verdict, refused.reasons))
  }
  const roles = inputs.gates.roles
  if (roles.length > 0) item.query.subject = { ...item.query.subject, roles: [...new Set([...item.query.subject.roles, ...roles])] }
  const decision = settle(run, run.bundle, item, inputs, explain)
  if (!run.shadow) return finish(run, item.request, decision)
  const candidate = settle(run, run.shadow, item, inputs, false)
  if (candidate.decision === decision.decision) return finish(run, item.request, decision)
  run.engine.metrics.shadowMismatch(decision.decision, candidate.decision)
  return finish(run, item.request, decision, { policyVersion: run.shadow.version, decision: candidate.decision, reasons: candidate.reasons })
}

/**
 * Decides every item for one subject and context: the token is verified once, the store is read and updated
 * in one round trip, risk is assessed once (each item applies its own sensitivity), and every item gets its
 * own verdict, decision id and decision-log line.
 */
async function decideAll(engine: Engine, input: DecisionInput, items: readonly BatchItem[], options: DecideOptions): Promise<Decision[]> {
  const run = startRun(engine, options)
  const established = await establish(input, engine.components.tokens)
  if ('refused' in established) {
    const anonymous = withoutCredentials(input)
    return items.map((item) => finish(run, { ...anonymous, action: item.action, resource: item.resource }, stamp(run, 'deny', [established.refused])))
  }
  const { request: template, token } = established
  if (token) run.subject = token.subject.tenant === undefined ? { id: token.subject.id } : { id: token.subject.id, tenant: token.subject.tenant }
  // Only a verified identity may move state: otherwise anyone who can reach the PDP could shape anyone's baseline.
  const learns = token !== undefined || options.callerTrusted === true
  const facts = decisionFacts(template, token, engine.components.defaultTenant, run.now)
  const state = await readState(run, facts, learns)
  const later: FollowUp[] = []
  const assessed = assessRisk(run, facts, state, learns, later)
  const decisions = items.map((item, index) => {
    const request: DecisionRequest = { ...template, action: item.action, resource: item.resource }
    const query = toPolicyQuery(request, engine.components.defaultTenant, run.now)
    const inputs: Omit<VerdictInputs, 'policy'> = { store: state.store, gates: NO_GATES }
    if (state.store !== 'ok') return decideItem(run, { request, query }, inputs, input.explain === true)
    const gateItem: GateItem = { resourceType: query.resource.type, action: query.action }
    if (item.resource.id !== undefined) gateItem.resourceId = item.resource.id
    const outcomes = state.gates.map((read) => read(gateItem))
    // Gate writes (activity, clean-up) do not depend on the item: the first item's are enough.
    if (index === 0 && learns) for (const o of outcomes) if (o.followUp) later.push(o.followUp)
    inputs.gates = combineGates(outcomes)
    const risk = index === 0 ? assessed : assessed && engine.tracer.step('risk', () => state.risk!.assess({ resourceType: query.resource.type, action: query.action }))
    if (risk) inputs.risk = risk
    return decideItem(run, { request, query }, inputs, input.explain === true)
  })
  runLater(engine, later)
  return decisions
}

/** Writes a plan's decision-log line: its verdict for an allowed resource, and what it answered for the type. */
function finishPlan(run: Run, request: LoggedRequest, plan: Plan): Plan {
  const latencyMs = performance.now() - run.started
  const allows = plan.plan === 'always_allowed' || plan.plan === 'conditional'
  const decision: Decision = { decision: !allows ? 'deny' : plan.stepUp ? 'step_up' : 'allow', decisionId: plan.decisionId, reasons: plan.reasons, policyVersion: plan.policyVersion }
  if (plan.stepUp) decision.stepUp = plan.stepUp
  if (plan.risk) decision.risk = plan.risk
  const logged: DecisionLogEntry['plan'] = { kind: plan.plan }
  if (plan.filter) logged.filter = plan.filter
  if (plan.unsupported) logged.unsupported = plan.unsupported
  run.engine.log.write(() => {
    const entry: DecisionLogEntry = { request, decision, time: run.now, latencyMs, source: 'plan', plan: logged }
    if (run.options.requestId !== undefined) entry.requestId = run.options.requestId
    if (run.options.traceId !== undefined) entry.traceId = run.options.traceId
    return entry
  })
  return plan
}

/**
 * Plans for one subject, action and resource type: the same token check, store read, gates and risk assessment as a
 * decision, then the policy partially evaluated with the resource unknown. A plan moves no state (it learns nothing
 * and cleans nothing up): it lists, and the accesses that follow are decided, or filtered, on their own.
 */
async function planFor(engine: Engine, input: PlanInput, options: DecideOptions): Promise<Plan> {
  const run = startRun(engine, options)
  const established = await establish(input, engine.components.tokens)
  if ('refused' in established) {
    const refused: Plan = { plan: 'always_denied', decisionId: decisionId(run.now), reasons: [established.refused], policyVersion: run.bundle.version }
    return finishPlan(run, withoutCredentials(input), refused)
  }
  const { request, token } = established
  if (token) run.subject = token.subject.tenant === undefined ? { id: token.subject.id } : { id: token.subject.id, tenant: token.subject.tenant }
  const facts = decisionFacts(request, token, engine.components.defaultTenant, run.now)
  const state = await readState(run, facts, false)
  const inputs: Omit<VerdictInputs, 'policy'> = { store: state.store, gates: NO_GATES }
  if (state.store === 'ok') {
    inputs.gates = combineGates(state.gates.map((read) => read({ resourceType: facts.resourceType, action: facts.action })))
    const risk = assessRisk(run, facts, state, false, [])
    if (risk) inputs.risk = risk
  }
  const query = toPolicyQuery(request, engine.components.defaultTenant, run.now)
  if (inputs.gates.roles.length > 0) query.subject = { ...query.subject, roles: [...new Set([...query.subject.roles, ...inputs.gates.roles])] }
  const outcome = settlePlan(run.bundle, query, inputs)
  const plan: Plan = { plan: outcome.plan, decisionId: decisionId(run.now), reasons: outcome.reasons, policyVersion: run.bundle.version }
  if (run.subject) plan.subject = run.subject
  if (outcome.filter) plan.filter = outcome.filter
  if (outcome.risk) plan.risk = outcome.risk
  if (outcome.unsupported) plan.unsupported = outcome.unsupported
  const stepUpFor = engine.components.stepUpFor
  if (outcome.stepUpLevel && stepUpFor) plan.stepUp = stepUpFor(run.bundle, outcome.stepUpLevel)
  else if (outcome.stepUp) plan.stepUp = outcome.stepUp
  return finishPlan(run, withoutCredentials(input), plan)
}

export function createPdp(components: PdpComponents): Pdp {
  const engine: Engine = {
    components,
    log: components.decisionLog ?? noDecisionLog,
    metrics: components.metrics ?? noMetrics,
    tracer: components.tracer ?? noDecisionTracer,
    gates: components.gates ?? [],
    failure: components.storeFailure ?? 'closed',
  }
  return {
    async decide(input, options = {}) {
      const [decision] = await decideAll(engine, input, [{ action: input.action, resource: input.resource }], options)
      return decision!
    },
    plan(input, options = {}) {
      return planFor(engine, input, options)
    },
    async decideBatch(input, items, options = {}) {
      if (items.length === 0) return []
      return decideAll(engine, { ...input, action: items[0]!.action, resource: items[0]!.resource }, items, options)
    },
  }
}
