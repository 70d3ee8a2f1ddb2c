import { assemblePdp } from '../compose.js'
import { decisionFacts, toPolicyQuery, type DecisionInput, type Pdp } from '../engine/pdp.js'
import type { PolicyBundle } from '../engine/policy/bundle.js'
import type { GeoLookup } from '../engine/risk/geo.js'
import type { DeviceState, StateStore, TokenVerifier } from '../engine/ports.js'
import { readOnlyBatch } from '../engine/read-only-batch.js'
import type { Clock, Decision, DecisionRequest } from '../engine/types.js'
import { grantGate } from '../identity/grants.js'
import { forwardAuthAnswer } from '../routes/authz.js'

export type RoleSource = 'policy' | 'request' | 'grant'

export interface ExplainedRule {
  ptype: string
  rule: string[]
  /** The line as it reads in the policy file's canonical form, e.g. `p, admin, *, documents, read, true, allow`. */
  text: string
  file?: string
  line?: number
}

export interface GatewayAnswer {
  gateway: string
  endpoint: string
  status: number
  headers: Record<string, string>
}

export interface Explained {
  decision: Decision
  rules: ExplainedRule[]
  roles: { role: string; sources: RoleSource[] }[]
  gateways: GatewayAnswer[]
}

export interface ExplainerOptions {
  /** The active policy, for requests that name no other bundle. */
  policy: { readonly current: PolicyBundle }
  store: StateStore
  tokens?: TokenVerifier
  now: Clock
  defaultTenant: string
  storeFailure: 'closed' | 'open'
  geo: GeoLookup
}

/** The forward-auth endpoints; every one of them translates a decision the same way (routes/authz.ts). */
const GATEWAYS: [string, string][] = [
  ['NGINX auth_request', '/authz'],
  ['Traefik ForwardAuth', '/authz/forward'],
  ['Caddy forward_auth', '/authz/forward'],
  ['Envoy ext_authz', '/authz/envoy/…'],
]

/** A store whose batches read but never write: explaining a decision must not teach the risk engine anything. */
function readOnlyStore(store: StateStore): StateStore {
  // Closing stays with the store's owner.
  return { kind: store.kind, batch: () => readOnlyBatch(store.batch()), ping: () => store.ping(), close: async () => {} }
}

function ruleOf(rule: { ptype: string; rule: string[]; source?: string }): ExplainedRule {
  const out: ExplainedRule = { ptype: rule.ptype, rule: rule.rule, text: [rule.ptype, ...rule.rule].join(', ') }
  const at = rule.source === undefined ? null : /^(.*):(\d+)$/.exec(rule.source)
  if (at) {
    out.file = at[1]!
    out.line = Number(at[2])
  }
  return out
}

/**
 * Decisions for the explorer: the engine as /decide runs it (same gates, same risk engine, same store reads),
 * but writing nothing, logging nothing and triggering no automated response, under whichever policy bundle
 * the page asks about. What the engine does not report (where each role came from) is worked out here from
 * the bundle's evaluator and the grants gate.
 */
export class Explainer {
  private readonly pdp: Pdp

  constructor(private readonly options: ExplainerOptions) {
    const store = readOnlyStore(options.store)
    this.pdp = assemblePdp({
      policy: options.policy,
      now: options.now,
      defaultTenant: options.defaultTenant,
      store,
      ...(options.tokens ? { tokens: options.tokens } : {}),
      storeFailure: options.storeFailure,
      geo: options.geo,
    })
  }

  async explain(input: DecisionInput, bundle: PolicyBundle, now: number): Promise<Explained> {
    const decision = await this.pdp.decide({ ...input, explain: true }, { bundle, now })
    const rules = (decision.explanation?.matchedRules ?? []).map(ruleOf)
    const roles = decision.explanation ? await this.roleSources(input, decision, bundle, now) : []
    const answer = forwardAuthAnswer(decision)
    const gateways = GATEWAYS.map(([gateway, endpoint]) => ({ gateway, endpoint, status: answer.status, headers: answer.headers }))
    return { decision, rules, roles, gateways }
  }

  /** The subject the engine decided about, with the roles the request (or its verified token) asserted. */
  private async requestOf(input: DecisionInput): Promise<DecisionRequest | undefined> {
    if (input.subject) return { subject: input.subject, action: input.action, resource: input.resource }
    if (input.token === undefined || !this.options.tokens) return undefined
    const verified = await this.options.tokens.verify(input.token)
    if (!verified.ok) return undefined
    const { subject } = verified.token
    return { subject: { id: subject.id, roles: subject.roles, ...(subject.tenant !== undefined ? { tenant: subject.tenant } : {}) }, action: input.action, resource: input.resource }
  }

  /**
   * Each effective role's origin: the policy (reached from the subject id alone), the request (asserted, or
   * reached from an asserted role) or a just-in-time grant (granted, or reached from a granted role).
   */
  private async roleSources(input: DecisionInput, decision: Decision, bundle: PolicyBundle, now: number): Promise<Explained['roles']> {
    const request = await this.requestOf(input)
    if (!request) return decision.explanation!.effectiveRoles.map((role) => ({ role, sources: [] }))
    const query = toPolicyQuery(request, this.options.defaultTenant, now)
    const asserted = request.subject.roles ?? []
    const granted = await this.grantedRoles(request, query.domain, bundle, now)
    const reach = (roles: string[]) => new Set(bundle.evaluator.evaluate({ ...query, subject: { ...query.subject, roles } }, true).roles ?? [])
    const fromPolicy = reach([])
    const fromRequest = asserted.length > 0 ? reach(asserted) : new Set<string>()
    const fromGrants = granted.length > 0 ? reach(granted) : new Set<string>()
    return decision.explanation!.effectiveRoles.map((role) => {
      const sources: RoleSource[] = []
      if (fromPolicy.has(role) && role !== request.subject.id) sources.push('policy')
      if (asserted.includes(role) || (fromRequest.has(role) && !fromPolicy.has(role))) sources.push('request')
      if (granted.includes(role) || (fromGrants.has(role) && !fromPolicy.has(role))) sources.push('grant')
      return { role, sources }
    })
  }

  /** The roles the grants gate adds for this request, read exactly as a decision reads them. */
  private async grantedRoles(request: DecisionRequest, tenant: string, bundle: PolicyBundle, now: number): Promise<string[]> {
    const batch = readOnlyBatch(this.options.store.batch())
    // The grants gate reads only the facts; no device is involved in which roles a grant adds.
    const noDevice: DeviceState = { record: undefined, trust: 0 }
    const facts = { ...decisionFacts(request, undefined, this.options.defaultTenant, now), tenant }
    const read = grantGate.prepare({ facts, device: noDevice, bundle }, batch)
    try {
      await batch.exec()
    } catch {
      return []
    }
    const item = { resourceType: request.resource.type, action: request.action }
    return read(request.resource.id === undefined ? item : { ...item, resourceId: request.resource.id }).roles ?? []
  }
}

export interface Difference {
  field: string
  active: unknown
  candidate: unknown
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/** What differs between two explanations of the same request, field by field as the page shows them. */
export function differences(active: Explained, candidate: Explained): Difference[] {
  const fields: [string, (e: Explained) => unknown][] = [
    ['decision', (e) => e.decision.decision],
    ['reasons', (e) => e.decision.reasons],
    ['stepUp', (e) => e.decision.stepUp ?? null],
    ['risk.score', (e) => e.decision.risk?.score ?? null],
    ['matchedRules', (e) => e.rules.map((r) => r.text)],
    ['effectiveRoles', (e) => e.decision.explanation?.effectiveRoles ?? []],
    ['gateway.status', (e) => e.gateways[0]!.status],
    ['gateway.www-authenticate', (e) => e.gateways[0]!.headers['www-authenticate'] ?? null],
  ]
  const out: Difference[] = []
  for (const [field, get] of fields) {
    const a = get(active)
    const b = get(candidate)
    if (!same(a, b)) out.push({ field, active: a, candidate: b })
  }
  return out
}
