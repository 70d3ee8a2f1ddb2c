import { noDecisionLog, type DecisionLog, type DecisionLogEntry, type DecisionSource, type LoggedRequest, type ShadowVerdict } from './decision-log.js'
import { noMetrics, type DecisionObservation, type PdpMetrics } from './metrics.js'
import type { TokenVerifier, VerifiedToken } from './identity.js'
import type { StateStore, StoreBatch } from '../store/state-store.js'
import { decisionId } from './ids.js'
import { readOnlyBatch } from './read-only-batch.js'
import type { PolicyBundle } from './policy/bundle.js'
import type { PolicyEnv, PolicyQuery, PolicyResult } from './policy/evaluator.js'
import type {
  Clock,
  Decision,
  DecisionRequest,
  DeviceContext,
  ReasonCode,
  RequestContext,
  RiskAssessment,
  SessionContext,
  StepUp,
  StepUpLevel,
  Subject,
  Verdict,
} from './types.js'
import { STEP_UP_LEVELS } from './types.js'

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
  subjectId: string
  tenant: string
  resourceType: string
  resourceId?: string
  action: string
  ip?: string
  deviceId?: string
  /** The device's posture as the request reports it. */
  posture?: DeviceContext
  session?: SessionContext
  token?: VerifiedToken
  /** Epoch ms. */
  now: number
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
}

/** The risk engine as the PDP uses it: prepare in the shared batch, assess after it ran. */
export interface PdpRisk {
  prepare(input: RiskInput, batch: StoreBatch): PreparedRisk
}

export interface PreparedRisk {
  /** Scores the prepared request; `target` re-scores it for another resource and action (batch items). */
  assess(target?: { resourceType: string; action: string }): RiskOutcome
}

export interface RiskInput {
  subjectId: string
  tenant: string
  resourceType: string
  action: string
  context: RequestContext
  now: number
}

export interface RiskOutcome {
  verdict: Verdict
  reasons: ReasonCode[]
  assessment: RiskAssessment
  stepUp?: StepUp
  followUp?: (batch: StoreBatch) => void
}

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
}

export interface RiskFindings {
  subjectId: string
  tenant: string
  ip?: string
  deviceId?: string
  sessionId?: string
  reasons: ReasonCode[]
  assessment: RiskAssessment
  /** Epoch ms. */
  now: number
  /** The policy revision the decision used: its response rules judge these findings. */
  bundle: PolicyBundle
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

export interface Pdp {
  decide(input: DecisionInput, options?: DecideOptions): Promise<Decision>
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

const POLICY_OUTCOME: Record<PolicyResult['effect'], { verdict: Verdict; reason: ReasonCode }> = {
  allow: { verdict: 'allow', reason: 'policy_allow' },
  deny: { verdict: 'deny', reason: 'policy_deny' },
  none: { verdict: 'deny', reason: 'no_matching_policy' },
  error: { verdict: 'deny', reason: 'policy_error' },
}

function withoutCredentials(input: DecisionInput): LoggedRequest {
  const { token: _token, subject: _subject, ...rest } = input
  return rest
}

const rank = (level: StepUpLevel) => STEP_UP_LEVELS.indexOf(level)

function uniq<T>(values: T[]): T[] {
  return [...new Set(values)]
}

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

export function createPdp(components: PdpComponents): Pdp {
  const log = components.decisionLog ?? noDecisionLog
  const metrics = components.metrics ?? noMetrics
  const gates = components.gates ?? []
  const failure = components.storeFailure ?? 'closed'

  function background(write: ((batch: StoreBatch) => void)[]): void {
    if (write.length === 0 || !components.store) return
    const batch = components.store.batch()
    for (const w of write) w(batch)
    batch.exec().catch((err: unknown) => components.onBackgroundError?.(err))
  }

  /**
   * Decides every item for one subject and context: the token is verified once, the store is read
   * and updated in one round trip, risk is assessed once (each item applies its own sensitivity),
   * and every item gets its own verdict, decision id and decision-log line.
   */
  async function decideAll(input: DecisionInput, items: readonly BatchItem[], options: DecideOptions): Promise<Decision[]> {
    const started = performance.now()
    const now = options.now ?? components.now()
    const bundle = options.bundle ?? components.policy.current
    const shadow = components.shadow?.current
    const explain = input.explain === true
    let subject: Decision['subject']

    const finish = (request: LoggedRequest, decision: Decision, shadowed?: ShadowVerdict): Decision => {
      const latencyMs = performance.now() - started
      const observation: DecisionObservation = { verdict: decision.decision, reason: decision.reasons[0]!, seconds: latencyMs / 1000 }
      if (decision.risk) observation.riskScore = decision.risk.score
      if (decision.decision === 'step_up' && decision.stepUp) observation.stepUpLevel = decision.stepUp.level
      metrics.decision(observation)
      log.write(() => {
        const entry: DecisionLogEntry = { request, decision, time: now, latencyMs }
        if (options.requestId !== undefined) entry.requestId = options.requestId
        if (options.traceId !== undefined) entry.traceId = options.traceId
        if (options.source !== undefined) entry.source = options.source
        if (shadowed) entry.shadow = shadowed
        return entry
      })
      return decision
    }
    const base = (verdict: Verdict, reasons: ReasonCode[], policyVersion = bundle.version): Decision => {
      const decision: Decision = { decision: verdict, decisionId: decisionId(now), reasons, policyVersion }
      if (subject) decision.subject = subject
      return decision
    }
    const every = (requestOf: (item: BatchItem) => LoggedRequest, verdict: Verdict, reasons: ReasonCode[]) =>
      items.map((item) => finish(requestOf(item), base(verdict, [...reasons])))
    const anonymous = (item: BatchItem): LoggedRequest => ({ ...withoutCredentials(input), action: item.action, resource: item.resource })

    let token: VerifiedToken | undefined
    let template: DecisionRequest
    if (input.token !== undefined) {
      if (input.subject !== undefined) throw new TypeError('send either a subject or a token, not both')
      if (!components.tokens) return every(anonymous, 'deny', ['token_invalid'])
      const verified = await components.tokens.verify(input.token)
      if (!verified.ok) return every(anonymous, 'deny', [verified.reason])
      token = verified.token
      template = fromToken(input, token)
      subject = token.subject.tenant === undefined ? { id: token.subject.id } : { id: token.subject.id, tenant: token.subject.tenant }
    } else if (input.subject !== undefined) {
      template = input as DecisionRequest
    } else {
      throw new TypeError('a decision needs a subject or a token')
    }
    // Only a verified identity may move state: otherwise anyone who can reach the PDP could shape anyone's baseline.
    const learns = token !== undefined || options.callerTrusted === true
    const requestOf = (item: BatchItem): DecisionRequest => ({ ...template, action: item.action, resource: item.resource })
    const firstRequest = requestOf(items[0]!)
    const first = toPolicyQuery(firstRequest, components.defaultTenant, now)
    const context = template.context ?? {}

    // One store round trip for every gate and the risk engine.
    const risk = components.risk?.(bundle)
    let gateResults: ((item: GateItem) => GateOutcome)[] = []
    let prepared: PreparedRisk | undefined
    let storeFailed = false
    if (components.store && (gates.length > 0 || risk)) {
      const batch = learns ? components.store.batch() : readOnlyBatch(components.store.batch())
      const gateContext: GateContext = { subjectId: first.subject.id, tenant: first.domain, resourceType: first.resource.type, action: first.action, now, bundle }
      if (items[0]!.resource.id !== undefined) gateContext.resourceId = items[0]!.resource.id
      if (context.ip !== undefined) gateContext.ip = context.ip
      if (context.device?.id !== undefined) {
        gateContext.deviceId = context.device.id
        gateContext.posture = context.device
      }
      if (context.session !== undefined) gateContext.session = context.session
      if (token) gateContext.token = token
      gateResults = gates.map((gate) => gate.prepare(gateContext, batch))
      prepared = risk?.prepare({ subjectId: first.subject.id, tenant: first.domain, resourceType: first.resource.type, action: first.action, context, now }, batch)
      const storeStarted = performance.now()
      try {
        await batch.exec()
        metrics.storeCall((performance.now() - storeStarted) / 1000, true)
      } catch {
        metrics.storeCall((performance.now() - storeStarted) / 1000, false)
        storeFailed = true
      }
    }
    if (storeFailed && failure === 'closed') return every(requestOf, 'deny', ['store_unavailable'])

    // Baselines learn from every decision, so risk state is read and updated even when the policy denies.
    const assessed = prepared && !storeFailed ? prepared.assess() : undefined
    const later: ((batch: StoreBatch) => void)[] = []
    if (learns && assessed?.followUp) later.push(assessed.followUp)
    if (learns && assessed && components.onRiskFindings) {
      const findings: RiskFindings = { subjectId: first.subject.id, tenant: first.domain, reasons: assessed.reasons, assessment: assessed.assessment, now, bundle }
      if (context.ip !== undefined) findings.ip = context.ip
      if (context.device?.id !== undefined) findings.deviceId = context.device.id
      if (context.session?.id !== undefined) findings.sessionId = context.session.id
      components.onRiskFindings(findings)
    }

    const decisions = items.map((item, index) => {
      const request = index === 0 ? firstRequest : requestOf(item)
      const query = index === 0 ? first : toPolicyQuery(request, components.defaultTenant, now)
      const gateItem: GateItem = { resourceType: query.resource.type, action: query.action }
      if (item.resource.id !== undefined) gateItem.resourceId = item.resource.id

      const extraRoles: string[] = []
      let permissionGranted = false
      let gateStepUp: { reason: ReasonCode; level: StepUpLevel } | undefined
      if (!storeFailed) {
        const outcomes = gateResults.map((read) => read(gateItem))
        // Gate writes (activity, clean-up) do not depend on the item: the first item's are enough.
        if (index === 0 && learns) for (const o of outcomes) if (o.followUp) later.push(o.followUp)
        const denied = outcomes.find((o) => o.deny)
        if (denied) return finish(request, base('deny', [denied.deny!]))
        for (const outcome of outcomes) {
          if (outcome.roles) extraRoles.push(...outcome.roles)
          if (outcome.permissionGranted) permissionGranted = true
          if (outcome.stepUp && (!gateStepUp || rank(outcome.stepUp.level) > rank(gateStepUp.level))) gateStepUp = outcome.stepUp
        }
      }
      if (extraRoles.length > 0) query.subject = { ...query.subject, roles: uniq([...query.subject.roles, ...extraRoles]) }

      // The verdict a policy gives this item once the gates' and the risk engine's findings are applied.
      const settle = (policy: PolicyBundle, withExplanation: boolean): Decision => {
        const result = policy.evaluator.evaluate(query, withExplanation)
        let outcome = POLICY_OUTCOME[result.effect]
        const reasons: ReasonCode[] = []
        if (outcome.verdict === 'allow' && extraRoles.length > 0) reasons.push('jit_grant')
        if (result.effect === 'none' && permissionGranted) outcome = { verdict: 'allow', reason: 'jit_grant' }
        const decision = base(outcome.verdict, [outcome.reason, ...reasons], policy.version)
        if (withExplanation) decision.explanation = { effectiveRoles: result.roles ?? [], matchedRules: result.matched, domain: query.domain }
        if (outcome.verdict !== 'allow') return decision

        if (storeFailed) {
          // Failing open: the policy allowed, but nothing about risk is known, so ask for fresh strong authentication.
          decision.decision = 'step_up'
          decision.reasons = ['store_unavailable', ...decision.reasons]
          if (components.stepUpFor) decision.stepUp = components.stepUpFor(bundle, 'high')
          return decision
        }
        const scored = assessed && (index === 0 ? assessed : prepared!.assess({ resourceType: query.resource.type, action: query.action }))
        if (scored) {
          decision.risk = scored.assessment
          decision.decision = scored.verdict
          decision.reasons = scored.verdict === 'allow' ? uniq([...decision.reasons, ...scored.reasons]) : uniq([...scored.reasons, ...decision.reasons])
          if (scored.stepUp) decision.stepUp = scored.stepUp
        }
        if (gateStepUp && decision.decision !== 'deny') {
          const current = decision.decision === 'step_up' && decision.stepUp ? decision.stepUp.level : undefined
          if (!current || rank(gateStepUp.level) > rank(current)) {
            decision.decision = 'step_up'
            decision.reasons = uniq([gateStepUp.reason, ...decision.reasons.filter((r) => r !== 'step_up_satisfied')])
            if (components.stepUpFor) decision.stepUp = components.stepUpFor(bundle, gateStepUp.level)
          } else {
            decision.reasons = uniq([...decision.reasons, gateStepUp.reason])
          }
        }
        return decision
      }
      const decision = settle(bundle, explain)
      if (!shadow) return finish(request, decision)
      const candidate = settle(shadow, false)
      if (candidate.decision === decision.decision) return finish(request, decision)
      metrics.shadowMismatch(decision.decision, candidate.decision)
      return finish(request, decision, { policyVersion: shadow.version, decision: candidate.decision, reasons: candidate.reasons })
    })
    background(later)
    return decisions
  }

  return {
    async decide(input, options = {}) {
      const [decision] = await decideAll(input, [{ action: input.action, resource: input.resource }], options)
      return decision!
    },
    async decideBatch(input, items, options = {}) {
      if (items.length === 0) return []
      return decideAll({ ...input, action: items[0]!.action, resource: items[0]!.resource }, items, options)
    },
  }
}
