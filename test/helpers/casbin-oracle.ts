import type { Enforcer } from 'casbin'
import { seededRandom } from '../../scripts/bench/generate-policy.js'
import type { PolicyEvaluator, PolicyQuery } from '../../src/engine/policy/evaluator.js'

/** One answer in a form both sides give: the effect and the rule reported as matched. */
export interface Answer {
  effect: string
  rule: string[]
}

/** A plain node-casbin Enforcer's answer to request values, the reference every PDP evaluator is held to. */
export function oracleAnswer(enforcer: Enforcer, values: unknown[]): Answer {
  try {
    const [allowed, rule] = enforcer.enforceExSync(...values)
    return { effect: allowed ? 'allow' : rule.length > 0 ? 'deny' : 'none', rule }
  } catch {
    return { effect: 'error', rule: [] }
  }
}

/** A PDP evaluator's answer to the same request. */
export function pdpAnswer(evaluator: PolicyEvaluator, query: PolicyQuery): Answer {
  const result = evaluator.evaluate(query, false)
  return { effect: result.effect, rule: result.effect === 'error' ? [] : [...(result.matched[0]?.rule ?? [])] }
}

/**
 * Integers below n from the bench's seeded PRNG (mulberry32), for the bulk of the requests: fast-check is too slow
 * for a million of them. seededRandom divides the 32-bit draw by 2^32, so multiplying back gives it exactly.
 */
export function random(seed: number): (n: number) => number {
  const next = seededRandom(seed)
  return (n) => (next() * 4294967296) % n
}

/*
 * Random policies, subjects and resource sets for the planner's property test (POST /plan): RBAC with a role
 * hierarchy per tenant, deny rules under every effect, and conditions over the resource's id and attributes, some of
 * which a filter cannot express (the plan must then name the rule). Attribute values keep one type per attribute, as
 * database columns do.
 */

const PLAN_USERS = ['u0', 'u1', 'u2', 'u3']
const PLAN_ROLES = ['r0', 'r1', 'r2', 'r3']
const PLAN_NAMES = [...PLAN_USERS, ...PLAN_ROLES]
const PLAN_EFFECTS = [
  'some(where (p.eft == allow))',
  '!some(where (p.eft == deny))',
  'some(where (p.eft == allow)) && !some(where (p.eft == deny))',
  'priority(p.eft) || deny',
  'subjectPriority(p.eft) || deny',
]
/** Matchers; `lists` marks the one whose eval has no space before it, so that Casbin leaves an `in (...)` condition whole. */
const PLAN_MATCHERS = [
  { lists: false, text: 'g(r.sub.id, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom) && r.obj.type == p.obj && (p.act == "*" || p.act == r.act) && eval(p.cond)' },
  { lists: true, text: 'g(r.sub.id, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom) && r.obj.type == p.obj && (p.act == "*" || p.act == r.act) &&eval(p.cond)' },
  { lists: false, text: 'g(r.sub.id, p.sub, r.dom) && r.obj.type == p.obj && (p.act == "*" || p.act == r.act) && (eval(p.cond) || r.obj.attributes.owner == r.sub.id)' },
  { lists: false, text: 'g(r.sub.id, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom) && r.obj.type == p.obj && r.act == p.act && keyMatch(r.obj.id, "/docs/*") && eval(p.cond)' },
]
/** Conditions as written in policy.csv. */
const PLAN_CONDITIONS = [
  'true',
  'false',
  'r.obj.attributes.owner == r.sub.id',
  'r.obj.attributes.owner != r.sub.id',
  'r.obj.attributes.team != null && r.obj.attributes.team == r.sub.attributes.team',
  'r.obj.attributes.level >= 3',
  'r.obj.attributes.level < r.sub.attributes.level',
  'r.sub.attributes.level >= 3',
  'r.env.hour >= 9 && r.env.hour < 17',
  'r.act == "read" || r.obj.attributes.public == true',
  '!(r.obj.attributes.archived == true) && r.obj.attributes.level > 1',
  '"keyMatch(r.obj.id, ""/docs/*"")"',
  '"keyMatch2(r.obj.id, ""/docs/:id"")"',
  '"keyMatch2(r.obj.id, ""/:kind/*"")"',
  '"keyMatch3(r.obj.id, ""/docs/{id}/edit"")"',
  '"keyMatch4(r.obj.id, ""/{kind}/{id}"")"',
  '"keyMatch5(r.obj.id, ""/docs/{id}"")"',
  '"regexMatch(r.obj.id, ""^/(docs|img)/[0-9]+$"")"',
  '"regexMatch(r.obj.attributes.status, ""^(open|review)"")"',
  '"globMatch(r.obj.id, ""/img/*"")"',
  '"globMatch(r.obj.id, ""*/edit"")"',
]
const PLAN_LIST_CONDITION = '"r.obj.attributes.status in (""open"", ""review"")"'
/** Conditions a filter cannot express, and the words the plan's reason uses for each. */
export const UNFILTERABLE_CONDITIONS: ReadonlyMap<string, string> = new Map([
  ['r.obj.attributes.meta.tag == "x"', 'resource.attributes.meta'],
  ['r.obj.attributes.level', 'resource.attributes.level'],
  ['"keyMatch4(r.obj.id, ""/{kind}/{kind}"")"', 'repeated parameters'],
  ['"regexMatch(r.obj.id, ""^/docs/.$"")"', 'single-character wildcard'],
])
export const PLAN_TYPES = ['documents', 'documents', 'documents', 'users']
export const PLAN_ACTIONS = ['read', 'update']

export interface PlanPolicy {
  model: string
  policy: string
}

/** A random model and policy for the planner; `unfilterable` is the chance that a line's condition is one a filter cannot express. */
export function randomPlanPolicy(next: (n: number) => number, unfilterable = 0.1): PlanPolicy {
  const pick = <T>(values: readonly T[]): T => values[next(values.length)]!
  const matcher = pick(PLAN_MATCHERS)
  const model = [
    '[request_definition]',
    'r = sub, dom, obj, act, env',
    '[policy_definition]',
    'p = sub, dom, obj, act, cond, eft',
    '[role_definition]',
    'g = _, _, _',
    '[policy_effect]',
    `e = ${pick(PLAN_EFFECTS)}`,
    '[matchers]',
    `m = ${matcher.text}`,
  ].join('\n')
  const conditions = matcher.lists ? [...PLAN_CONDITIONS, PLAN_LIST_CONDITION] : PLAN_CONDITIONS
  const lines: string[] = []
  const ruleCount = 1 + next(12)
  for (let i = 0; i < ruleCount; i++) {
    const condition = next(1000) < unfilterable * 1000 ? pick([...UNFILTERABLE_CONDITIONS.keys()]) : pick(conditions)
    const eft = next(3) === 0 ? 'deny' : 'allow'
    // Mostly one type and the subject's likely roles, so that lines meet and conditions and effects decide.
    lines.push(`p, ${pick([...PLAN_ROLES, 'u0'])}, ${pick(['acme', 'globex', '*', '*'])}, ${next(5) === 0 ? 'users' : 'documents'}, ${pick([...PLAN_ACTIONS, '*'])}, ${condition}, ${eft}`)
  }
  const linkCount = next(7)
  for (let i = 0; i < linkCount; i++) {
    const a = next(PLAN_NAMES.length)
    const b = next(PLAN_NAMES.length)
    // Links only go from an earlier name to a later one, so no tenant sees a cycle (which the loader refuses).
    if (a !== b) lines.push(`g, ${PLAN_NAMES[Math.min(a, b)]}, ${PLAN_NAMES[Math.max(a, b)]}, ${pick(['acme', 'globex', '*'])}`)
  }
  return { model, policy: lines.join('\n') }
}

export interface PlanSubject {
  id: string
  roles: string[]
  tenant: string
  attributes: Record<string, unknown>
}

export function randomPlanSubject(next: (n: number) => number): PlanSubject {
  const pick = <T>(values: readonly T[]): T => values[next(values.length)]!
  const attributes: Record<string, unknown> = {}
  if (next(3) > 0) attributes.team = pick(['a', 'b'])
  if (next(3) > 0) attributes.level = next(7)
  const roles = next(4) === 0 ? [] : [pick(PLAN_ROLES), pick(PLAN_ROLES)].slice(0, 1 + next(2))
  return { id: pick([...PLAN_NAMES, 'stranger']), roles, tenant: pick(['acme', 'acme', 'globex']), attributes }
}

export interface PlanResource {
  id: string
  attributes: Record<string, unknown>
}

/** Resources with typed, sometimes missing attributes (meta is an object, which only the unfilterable conditions read). */
export function randomPlanResources(next: (n: number) => number, count: number): PlanResource[] {
  const pick = <T>(values: readonly T[]): T => values[next(values.length)]!
  const maybe = (value: () => unknown): unknown => (next(4) === 0 ? undefined : value())
  return Array.from({ length: count }, (_, i) => {
    const attributes: Record<string, unknown> = {
      owner: maybe(() => pick(PLAN_USERS)),
      team: maybe(() => pick(['a', 'b'])),
      level: maybe(() => next(7)),
      status: maybe(() => pick(['open', 'closed', 'review'])),
      public: maybe(() => next(2) === 0),
      archived: maybe(() => next(2) === 0),
      meta: maybe(() => ({ tag: pick(['x', 'y']) })),
    }
    for (const key of Object.keys(attributes)) if (attributes[key] === undefined) delete attributes[key]
    // Ids that the pattern functions read differently: sub-paths, query strings, doubled slashes, a line break, a
    // character beyond U+FFFF (one character to SQL, two to JavaScript).
    return { id: `${pick(['/docs/', '/img/', '', '/docs//'])}${i}${pick(['', '', '', '/edit', '?v=1', '/edit?v=1', '😀', '\n', '/'])}`, attributes }
  })
}
