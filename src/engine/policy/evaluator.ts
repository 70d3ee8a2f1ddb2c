import type { Attributes, HttpRequestFacts, MatchedRule, Resource } from '../types.js'

/** Request-time facts a policy condition may read as `r.env.*`. */
export interface PolicyEnv {
  /** Epoch seconds. */
  time: number
  /** Hour of day, 0-23, UTC. */
  hour: number
  /** Day of week, 0 (Sunday) - 6, UTC. */
  weekday: number
  ip: string
}

/** The subject as policy conditions see it (`r.sub.id`, `r.sub.attributes.team`, ...). */
export interface PolicySubject {
  id: string
  /** Roles the caller asserted plus any just-in-time grants; merged with the policy's own assignments. */
  roles: readonly string[]
  tenant: string
  attributes: Attributes
}

export interface PolicyQuery {
  subject: PolicySubject
  /** The Casbin domain: the subject's tenant, or the default domain. */
  domain: string
  resource: Required<Pick<Resource, 'type'>> & { id: string; attributes: Attributes }
  action: string
  env: PolicyEnv
  /** The original HTTP request of a forward-auth decision; absent for /decide. */
  http?: HttpRequestFacts
}

export type PolicyEffect = 'allow' | 'deny' | 'none' | 'error'

export interface PolicyResult {
  effect: PolicyEffect
  /** The rule(s) that decided the effect; empty for `none`. */
  matched: MatchedRule[]
  /** Effective roles (transitive), filled when explanation was asked for. */
  roles?: string[]
  /** Why evaluation failed, for `error` (never shown to callers, logged). */
  error?: string
}

/**
 * One immutable, loaded policy. A reload builds a new evaluator and swaps the reference,
 * so an evaluator never changes after construction.
 */
export interface PolicyEvaluator {
  /** Which implementation answers: the indexed fast path or node-casbin's enforcer. */
  readonly engine: string
  /** Number of policy and role lines loaded. */
  readonly ruleCount: number
  /** Role names the policy knows (assigned, inherited or granted permissions). */
  readonly roles: ReadonlySet<string>
  /** Why the indexed evaluator could not take this policy, when node-casbin's enforcer answers instead. */
  readonly fallbackReason?: string
  /** The same as a stable code (FALLBACK_CODES in indexed-evaluator.ts), for metrics. */
  readonly fallbackCode?: string
  evaluate(query: PolicyQuery, explain: boolean): PolicyResult
}

function frozenCopy<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value
  // Loops rather than entries/fromEntries: this runs for every condition a request reaches.
  if (Array.isArray(value)) {
    const items: unknown[] = new Array(value.length)
    for (let i = 0; i < value.length; i++) items[i] = frozenCopy(value[i])
    return Object.freeze(items) as T
  }
  const copy: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    const item = frozenCopy((value as Record<string, unknown>)[key])
    // An own "__proto__" stays a property, as it was in the request, instead of becoming the copy's prototype.
    if (key === '__proto__') Object.defineProperty(copy, key, { value: item, enumerable: true })
    else copy[key] = item
  }
  return Object.freeze(copy) as T
}

/**
 * The request as conditions and matchers read it: a deep, frozen copy. Validation already refuses every
 * expression that could write, and this keeps it so should one ever run: the caller's request, which the next
 * batch item and the shadow policy read, cannot be changed through a policy.
 */
export function readOnlyQuery(query: PolicyQuery): PolicyQuery {
  return Object.freeze({
    subject: frozenCopy(query.subject),
    domain: query.domain,
    resource: frozenCopy(query.resource),
    action: query.action,
    env: frozenCopy(query.env),
    ...(query.http ? { http: frozenCopy(query.http) } : {}),
  })
}
