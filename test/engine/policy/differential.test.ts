import t from 'tap'
import fc from 'fast-check'
import { deepStrictEqual } from 'node:assert/strict'
import { newEnforcer, newModelFromString, StringAdapter, type Enforcer } from 'casbin'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createCasbinEvaluator, domainMatches, requestFieldsOf, requestValues } from '../../../src/engine/policy/casbin-evaluator.js'
import { createEvaluator } from '../../../src/engine/policy/evaluator-factory.js'
import type { PolicyEvaluator, PolicyQuery } from '../../../src/engine/policy/evaluator.js'
import { type Answer, oracleAnswer, pdpAnswer, random } from '../../helpers/casbin-oracle.js'
import { createIndexedEvaluator } from '../../../src/engine/policy/indexed-evaluator.js'
import { parseModelFile, parsePolicyFile } from '../../../src/engine/policy/policy-files.js'
import { EXAMPLE_POLICIES } from '../../helpers/build.js'

/*
 * The oracle is node-casbin as a Casbin user runs it: newEnforcer(model, adapter) over the same files, with its
 * whole loadPolicy (which orders lines for the priority effects). Both of the PDP's evaluators must give its
 * verdict and the rule it reports as matched, for every generated request. The one setting the oracle receives
 * is the PDP's documented convention that a role link in domain "*" holds in every domain.
 *
 * PDP_DIFFERENTIAL_REQUESTS sets how many requests are compared (100,000 by default; 1,000,000 or more for a
 * thorough run). Policies are kept small, because the oracle scans every line per request.
 */

const EXAMPLE_MODEL = await readFile(join(EXAMPLE_POLICIES, 'model.conf'), 'utf8')
const EXAMPLE_POLICY = await readFile(join(EXAMPLE_POLICIES, 'policy.csv'), 'utf8')

const EFFECTS = [
  'some(where (p.eft == allow))',
  '!some(where (p.eft == deny))',
  'some(where (p.eft == allow)) && !some(where (p.eft == deny))',
  'priority(p.eft) || deny',
  'subjectPriority(p.eft) || deny',
]

/** Matchers the indexed evaluator takes: the bundled one, reordered, strict domains, no condition, no roles. */
const MATCHERS = [
  'g(r.sub.id, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom) && r.obj.type == p.obj && (p.act == "*" || p.act == r.act) && eval(p.cond)',
  '(r.act == p.act || "*" == p.act) && p.obj == r.obj.type && (r.dom == p.dom || p.dom == "*") && g(r.sub.id, p.sub, r.dom) && eval(p.cond)',
  'g(r.sub.id, p.sub, r.dom) && p.dom == r.dom && r.obj.type == p.obj && r.act == p.act && eval(p.cond)',
  'g(r.sub.id, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom) && r.obj.type == p.obj && (p.act == "*" || p.act == r.act)',
  'r.sub.id == p.sub && r.obj.type == p.obj && (p.act == "*" || p.act == r.act) && eval(p.cond)',
  // in lists, which Casbin rewrites to arrays before it compiles the matcher: last (in binds more loosely than &&),
  // or parenthesised without a space before the group
  'g(r.sub.id, p.sub, r.dom) && (p.dom == "*" || p.dom == r.dom) && r.obj.type == p.obj && (p.act == "*" || p.act == r.act) && r.act in ("read", "update")',
  "g(r.sub.id, p.sub, r.dom) && p.dom == r.dom && r.obj.type == p.obj && r.act == p.act && r.obj.type in ('documents', 'users')",
  'g(r.sub.id, p.sub, r.dom) &&(r.act in ("read", "update", "*")) && r.obj.type == p.obj && (p.act == "*" || p.act == r.act)',
]

function modelText(effect: string, matcher: string): string {
  return EXAMPLE_MODEL.replace(/^e = .*$/m, `e = ${effect}`).replace(/^m = .*$/m, `m = ${matcher}`)
}

const USERS = ['u0', 'u1', 'u2', 'u3']
const ROLES = ['r0', 'r1', 'r2', 'r3', 'r4']
/** Links only go from an earlier name to a later one, so no tenant ever sees a cycle (which the loader refuses). */
const NAMES = [...USERS, ...ROLES]
const TENANTS = ['acme', 'globex', '*']
const TYPES = ['documents', 'users', 'ledger']
const ACTIONS = ['read', 'update', 'delete', '*']

/** Conditions as written in policy.csv (CSV-quoted where they hold commas), covering every result type Casbin maps. */
const CONDITIONS = [
  'true',
  'false',
  'r.obj.attributes.owner == r.sub.id',
  'r.sub.attributes.level >= 3',
  'r.obj.attributes.team != null && r.obj.attributes.team == r.sub.attributes.team',
  'r.env.hour >= 9 && r.env.hour < 17',
  'r.act == "read" || r.sub.attributes.level > 4',
  'r.sub.id == "u1"',
  // throws when the attribute is missing
  'r.obj.attributes.meta.tag == "x"',
  'r.sub.attributes.profile.region == "eu"',
  // a number: 0 is indeterminate, 3 is Casbin's Deny whatever the line's effect, NaN is none of them
  'r.sub.attributes.level',
  'r.sub.attributes.level - 2',
  // a string (empty is indeterminate) or undefined (an error)
  'r.obj.attributes.owner',
  'r.sub.attributes.tier in r.obj.attributes.tiers',
  '"keyMatch(r.obj.id, ""/docs/*"")"',
  // "$&" in a condition is expanded by Casbin's textual splice of the condition into the matcher
  'r.sub.attributes.note == "$&"',
]

interface GeneratedPolicy {
  effect: string
  matcher: string
  links: { from: number; to: number; tenant: string }[]
  rules: { sub: string; tenant: string; type: string; action: string; condition: string; eft: 'allow' | 'deny' }[]
}

const policyArb: fc.Arbitrary<GeneratedPolicy> = fc.record({
  effect: fc.constantFrom(...EFFECTS),
  matcher: fc.constantFrom(...MATCHERS),
  links: fc.array(
    fc
      .record({ a: fc.nat(NAMES.length - 1), b: fc.nat(NAMES.length - 1), tenant: fc.constantFrom(...TENANTS) })
      .filter(({ a, b }) => a !== b)
      .map(({ a, b, tenant }) => ({ from: Math.min(a, b), to: Math.max(a, b), tenant })),
    { maxLength: 14 },
  ),
  rules: fc.array(
    fc.record({
      sub: fc.constantFrom(...ROLES, ...ROLES, 'u0', 'u2'),
      tenant: fc.constantFrom(...TENANTS),
      type: fc.constantFrom(...TYPES),
      action: fc.constantFrom(...ACTIONS),
      condition: fc.constantFrom(...CONDITIONS),
      eft: fc.constantFrom('allow' as const, 'deny' as const),
    }),
    { minLength: 1, maxLength: 24 },
  ),
})

function policyText(p: GeneratedPolicy): string {
  return [
    ...p.rules.map((r) => `p, ${r.sub}, ${r.tenant}, ${r.type}, ${r.action}, ${r.condition}, ${r.eft}`),
    ...p.links.map((l) => `g, ${NAMES[l.from]}, ${NAMES[l.to]}, ${l.tenant}`),
  ].join('\n')
}

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined })
const attributesArb = (entries: Record<string, fc.Arbitrary<unknown>>) =>
  fc.record(Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, maybe(v)]))).map((o) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  )

const queryArb: fc.Arbitrary<PolicyQuery> = fc
  .record({
    id: fc.constantFrom(...NAMES, 'stranger'),
    roles: fc.uniqueArray(fc.constantFrom(...ROLES, 'u1', 'ghost'), { maxLength: 3 }),
    tenant: fc.constantFrom('acme', 'acme', 'globex', 'default', '*'),
    subjectAttributes: attributesArb({
      level: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constant('3')),
      team: fc.constantFrom('a', 'b'),
      tier: fc.constantFrom('gold', 'old', 'silver'),
      note: fc.constantFrom('eval(p_cond)', '$&'),
    }),
    type: fc.constantFrom(...TYPES, ...TYPES, 'other'),
    resourceId: fc.constantFrom('/docs/1', 'x'),
    resourceAttributes: attributesArb({
      owner: fc.constantFrom(...USERS, ''),
      team: fc.constantFrom('a', 'b'),
      meta: fc.constantFrom({ tag: 'x' }, { tag: 'y' }),
      tiers: fc.constantFrom(['gold'], ['silver', 'old'], 'gold'),
    }),
    action: fc.constantFrom('read', 'read', 'update', 'delete', 'create', '*'),
    hour: fc.integer({ min: 0, max: 23 }),
  })
  .map((r) => ({
    subject: { id: r.id, roles: r.roles, tenant: r.tenant, attributes: r.subjectAttributes },
    domain: r.tenant,
    resource: { type: r.type, id: r.resourceId, attributes: r.resourceAttributes },
    action: r.action,
    env: { time: 1772366400 + r.hour * 3600, hour: r.hour, weekday: 0, ip: '10.0.0.1' },
  }))

async function bothEvaluators(modelSource: string, policySource: string): Promise<[PolicyEvaluator, PolicyEvaluator]> {
  const model = parseModelFile(modelSource)
  const lines = parsePolicyFile(policySource, model)
  // The indexed evaluator first: createCasbinEvaluator loads the lines into the parsed model itself.
  const indexed = createIndexedEvaluator(model, lines)
  if (!indexed) throw new Error(`the indexed evaluator refused:\n${modelSource}\n${policySource}`)
  return [indexed, await createCasbinEvaluator(model, lines)]
}

function compare(indexed: PolicyEvaluator, casbin: PolicyEvaluator, query: PolicyQuery, explain: boolean): void {
  deepStrictEqual(indexed.evaluate(query, explain), casbin.evaluate(query, explain))
}

/** Dense policies: one resource type and few actions, so that most lines are candidates and conditions decide. */
const densePolicyArb = policyArb.map((p) => ({ ...p, rules: p.rules.map((r) => ({ ...r, type: 'documents', action: r.action === 'read' ? 'read' : '*' })) }))
const denseQueryArb = queryArb.map((q) => ({ ...q, resource: { ...q.resource, type: 'documents' }, action: q.action === '*' ? 'read' : q.action }))

/** Where the `priority` field sits in the policy definition, if the model has one. */
const PRIORITY_PLACES = ['none', 'first', 'last'] as const
type PriorityPlace = (typeof PRIORITY_PLACES)[number]

/** The matcher written over several lines joined with "\\", as Casbin's config reader allows. */
const multiline = (matcher: string) => matcher.replaceAll(' && ', ' && \\\n    ')

function oracleModelText(effect: string, matcher: string, priority: PriorityPlace): string {
  const fields = priority === 'first' ? 'priority, sub, dom, obj, act, cond, eft' : priority === 'last' ? 'sub, dom, obj, act, cond, eft, priority' : 'sub, dom, obj, act, cond, eft'
  return modelText(effect, matcher).replace(/^p = .*$/m, `p = ${fields}`)
}

/*
 * The generated models. A matcher is a shuffled chain of one term per policy field, each of a kind drawn below,
 * optionally followed by eval(p.cond) or an in list; then, sometimes, a change that takes it just outside the shape
 * the indexed evaluator proves (eval first, an "||" of two terms). Each kind decides the values its field gets.
 */
const SUBJECT_TERMS = {
  g3: 'g(r.sub.id, p.sub, r.dom)',
  g2: 'g(r.sub.id, p.sub)',
  equal: 'r.sub.id == p.sub',
} as const
const DOMAIN_TERMS = {
  any: '(p.dom == "*" || p.dom == r.dom)',
  strict: 'p.dom == r.dom',
  // ipMatch fails on a request whose address is none, so where it sits in the chain matters
  ip: 'ipMatch(r.env.ip, p.dom)',
  none: undefined,
} as const
const OBJECT_TERMS = {
  type: 'r.obj.type == p.obj',
  keyMatch: 'keyMatch(r.obj.id, p.obj)',
  keyMatch2: 'keyMatch2(r.obj.id, p.obj)',
  keyMatch3: 'keyMatch3(r.obj.id, p.obj)',
  keyMatch5: 'keyMatch5(r.obj.id, p.obj)',
  regexMatch: 'regexMatch(r.obj.id, p.obj)',
  globMatch: 'globMatch(r.obj.id, p.obj)',
  // resource roles: g2 links resource ids to groups
  g2: 'g2(r.obj.id, p.obj)',
  // outside the indexed shape: keyMatch4 fails on some requests whatever the pattern
  keyMatch4: 'keyMatch4(r.obj.id, p.obj)',
} as const
const ACTION_TERMS = {
  any: '(p.act == "*" || p.act == r.act)',
  equal: 'r.act == p.act',
  regex: 'regexMatch(r.act, p.act)',
} as const

const TENANT_VALUES = TENANTS
const ADDRESS_VALUES = ['10.0.0.0/8', '10.0.0.1', '192.168.0.0/16', '::1', '0.0.0.0/0']
const OBJECT_VALUES: Record<keyof typeof OBJECT_TERMS, string[]> = {
  type: TYPES,
  keyMatch: ['/docs/*', '/docs/1', '/users/*', '*', '/docs'],
  keyMatch2: ['/docs/:id', '/docs/*', '/users/:id/profile', '*', '/docs/1'],
  keyMatch3: ['/docs/{id}', '/docs/*', '/users/{id}/profile', '/docs/1'],
  keyMatch5: ['/docs/{id}', '/docs/*', '/users/{id}/profile', '/docs/1'],
  regexMatch: ['^/docs/', '1$', 'users', '^/docs/[0-9]+$'],
  globMatch: ['/docs/*', '/docs/**', '/users/*/profile', '*', '/docs/?'],
  g2: ['/docs/1', 'docs', 'users', 'all'],
  keyMatch4: ['/docs/{id}', '/users/{id}/profile', '/docs/1'],
}
/** Resource ids and groups; g2 links only go from an earlier one to a later one. */
const RESOURCE_NAMES = ['/docs/1', '/docs/2', '/users/7', 'docs', 'users', 'all']
const ACTION_VALUES: Record<keyof typeof ACTION_TERMS, string[]> = { any: ACTIONS, equal: ACTIONS, regex: ['read|update', '^d', '.*', 'read'] }
const REQUEST_RESOURCE_IDS = ['/docs/1', '/docs/2', '/docs/1/edit', '/users/7/profile', '/users/7', '/docs/1?x=1', 'docs', 'x', '']
const REQUEST_ADDRESSES = ['10.0.0.1', '10.2.3.4', '192.168.1.1', '::1', '172.16.0.1', '', 'not-an-address']

interface ShapedPolicy {
  subject: keyof typeof SUBJECT_TERMS
  domain: keyof typeof DOMAIN_TERMS
  object: keyof typeof OBJECT_TERMS
  action: keyof typeof ACTION_TERMS
  /** eval(p.cond) last, an in list last, or neither */
  last: 'eval' | 'in' | 'none'
  /** The first four terms in this order of their indexes (a permutation seed). */
  order: number[]
  outside: 'none' | 'eval-first' | 'or'
  effect: string
  priority: PriorityPlace
  /** Whether the policy definition has an eft field. */
  eft: boolean
  multiline: boolean
  links: { from: number; to: number; tenant: string }[]
  resourceLinks: { from: number; to: number }[]
  rules: { sub: string; dom: number; obj: number; act: number; condition: string; eft: 'allow' | 'deny'; priority: number }[]
}

const shapedPolicyArb: fc.Arbitrary<ShapedPolicy> = fc.record({
  subject: fc.constantFrom('g3', 'g3', 'g2', 'equal'),
  domain: fc.constantFrom('any', 'any', 'strict', 'ip', 'none'),
  object: fc.constantFrom('type', 'type', 'keyMatch', 'keyMatch2', 'keyMatch3', 'keyMatch5', 'regexMatch', 'globMatch', 'g2', 'g2', 'keyMatch4'),
  action: fc.constantFrom('any', 'any', 'equal', 'regex'),
  last: fc.constantFrom('eval', 'eval', 'in', 'none'),
  order: fc.array(fc.nat(3), { minLength: 4, maxLength: 4 }),
  outside: fc.constantFrom('none', 'none', 'none', 'none', 'none', 'none', 'none', 'none', 'eval-first', 'or'),
  effect: fc.constantFrom(...EFFECTS, 'priority(p.eft) || deny', 'subjectPriority(p.eft) || deny'),
  priority: fc.constantFrom(...PRIORITY_PLACES),
  eft: fc.boolean(),
  multiline: fc.boolean(),
  links: policyArb.map((p) => p.links.slice(0, 8)),
  resourceLinks: fc.array(
    fc
      .record({ a: fc.nat(RESOURCE_NAMES.length - 1), b: fc.nat(RESOURCE_NAMES.length - 1) })
      .filter(({ a, b }) => a !== b)
      .map(({ a, b }) => ({ from: Math.min(a, b), to: Math.max(a, b) })),
    { maxLength: 6 },
  ),
  rules: fc.array(
    fc.record({
      sub: fc.constantFrom(...ROLES, ...ROLES, 'u0', 'u2'),
      dom: fc.nat(99),
      obj: fc.nat(99),
      act: fc.nat(99),
      condition: fc.constantFrom(...CONDITIONS),
      eft: fc.constantFrom('allow' as const, 'deny' as const),
      priority: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: -20, max: 20 })),
    }),
    { minLength: 1, maxLength: 10 },
  ),
})

function shapedMatcher(p: ShapedPolicy): string {
  const chain: (string | undefined)[] = [SUBJECT_TERMS[p.subject], DOMAIN_TERMS[p.domain], OBJECT_TERMS[p.object], ACTION_TERMS[p.action]]
  // Shuffle by the drawn indexes (Fisher-Yates over the fixed seed), then drop an absent domain term.
  for (let i = chain.length - 1; i > 0; i--) {
    const j = p.order[i]! % (i + 1)
    ;[chain[i], chain[j]] = [chain[j], chain[i]]
  }
  const terms = chain.filter((t): t is string => t !== undefined)
  if (p.outside === 'or') terms.splice(0, 2, `(${terms[0]} || ${terms[1]})`)
  if (p.last === 'eval') {
    if (p.outside === 'eval-first') terms.unshift('eval(p.cond)')
    else terms.push('eval(p.cond)')
  }
  if (p.last === 'in') terms.push('r.act in ("read", "update")')
  return terms.join(' && ')
}

function shapedModelText(p: ShapedPolicy): string {
  // Casbin reads g2 only when g is defined, so a model with resource roles always has g, used or not.
  const g = p.subject === 'g3' ? 'g = _, _, _' : p.subject === 'g2' || p.object === 'g2' ? 'g = _, _' : undefined
  const roles = g === undefined ? [] : [g, ...(p.object === 'g2' ? ['g2 = _, _'] : [])]
  // Casbin's loader orders lines by subject depth in "g": without one, subjectPriority is refused (tested apart).
  const effect = g === undefined ? p.effect.replace('subjectPriority', 'priority') : p.effect
  const fields = ['sub', 'dom', 'obj', 'act', 'cond', ...(p.eft ? ['eft'] : [])]
  if (p.priority === 'first') fields.unshift('priority')
  if (p.priority === 'last') fields.push('priority')
  const matcher = shapedMatcher(p)
  return [
    '[request_definition]',
    'r = sub, dom, obj, act, env',
    '[policy_definition]',
    `p = ${fields.join(', ')}`,
    ...(roles.length > 0 ? ['[role_definition]', ...roles] : []),
    '[policy_effect]',
    `e = ${effect}`,
    '[matchers]',
    `m = ${p.multiline ? multiline(matcher) : matcher}`,
    '',
  ].join('\n')
}

function shapedPolicyText(p: ShapedPolicy): string {
  const domains = p.domain === 'ip' ? ADDRESS_VALUES : TENANT_VALUES
  const objects = OBJECT_VALUES[p.object]
  const actions = ACTION_VALUES[p.action]
  const linkLines =
    p.subject === 'g3' ? p.links.map((l) => `g, ${NAMES[l.from]}, ${NAMES[l.to]}, ${l.tenant}`) : p.subject === 'g2' ? p.links.map((l) => `g, ${NAMES[l.from]}, ${NAMES[l.to]}`) : []
  return [
    ...p.rules.map((r) => {
      const values = [r.sub, domains[r.dom % domains.length]!, objects[r.obj % objects.length]!, actions[r.act % actions.length]!, r.condition]
      if (p.eft) values.push(r.eft)
      if (p.priority === 'first') values.unshift(String(r.priority))
      if (p.priority === 'last') values.push(String(r.priority))
      return `p, ${values.join(', ')}`
    }),
    ...linkLines,
    ...(p.object === 'g2' ? p.resourceLinks.map((l) => `g2, ${RESOURCE_NAMES[l.from]}, ${RESOURCE_NAMES[l.to]}`) : []),
  ].join('\n')
}

/** Requests drawn from the bench's seeded PRNG: fast-check is too slow for a hundred thousand of them. */
function randomQuery(next: (n: number) => number): PolicyQuery {
  const pick = <T>(values: readonly T[]): T => values[next(values.length)]!
  const maybe = (value: () => unknown): unknown => (next(3) === 0 ? undefined : value())
  const compact = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
  const tenant = pick(['acme', 'acme', 'globex', 'default', '*'])
  const hour = next(24)
  return {
    subject: {
      id: pick([...NAMES, 'stranger']),
      roles: [],
      tenant,
      attributes: compact({
        level: maybe(() => (next(8) === 0 ? '3' : next(7))),
        team: maybe(() => pick(['a', 'b'])),
        tier: maybe(() => pick(['gold', 'old', 'silver'])),
        note: maybe(() => pick(['eval(p_cond)', '$&'])),
      }),
    },
    domain: tenant,
    resource: {
      type: pick([...TYPES, ...TYPES, 'other']),
      id: pick(REQUEST_RESOURCE_IDS),
      attributes: compact({
        owner: maybe(() => pick([...USERS, ''])),
        team: maybe(() => pick(['a', 'b'])),
        meta: maybe(() => pick([{ tag: 'x' }, { tag: 'y' }])),
        tiers: maybe(() => pick([['gold'], ['silver', 'old'], 'gold'])),
      }),
    },
    action: pick(['read', 'read', 'update', 'delete', 'create', '*']),
    env: { time: 1772366400 + hour * 3600, hour, weekday: 0, ip: pick(REQUEST_ADDRESSES) },
  }
}

/** node-casbin as its users run it, over the same texts. */
async function plainEnforcer(modelSource: string, policySource: string): Promise<Enforcer> {
  const enforcer = await newEnforcer(newModelFromString(modelSource), new StringAdapter(policySource))
  if (/^g = _, _, _/m.test(modelSource)) await enforcer.addNamedDomainMatchingFunc('g', domainMatches)
  await enforcer.buildRoleLinks()
  return enforcer
}

const REQUESTS = Number(process.env.PDP_DIFFERENTIAL_REQUESTS ?? 100_000)
const REQUESTS_PER_POLICY = 250

t.test('random models and policies: the PDP answers as a plain node-casbin Enforcer', async (t) => {
  let compared = 0
  let reordered = 0
  const effects = new Map<string, number>()
  const engines = new Map<string, number>()
  const kinds = new Map<string, number>()
  const policies = Math.ceil(REQUESTS / REQUESTS_PER_POLICY)
  await fc.assert(
    fc.asyncProperty(shapedPolicyArb, fc.integer(), async (policy, seed) => {
      const modelSource = shapedModelText(policy)
      const policySource = shapedPolicyText(policy)
      const model = parseModelFile(modelSource)
      const lines = parsePolicyFile(policySource, model)
      // What the PDP loads: the indexed evaluator where it proves it answers exactly, else the Casbin path.
      const pdp = await createEvaluator(model, lines)
      const casbin = pdp.engine === 'casbin' ? pdp : await createCasbinEvaluator(model, lines)
      const oracle = await plainEnforcer(modelSource, policySource)
      const fields = requestFieldsOf(model)
      const ordered = oracle.getModel().model.get('p')!.get('p')!.policy.map((rule) => rule.join(','))
      if (ordered.join('\n') !== lines.filter((l) => l.ptype === 'p').map((l) => l.values.join(',')).join('\n')) reordered++
      engines.set(pdp.engine, (engines.get(pdp.engine) ?? 0) + 1)
      const count = (kind: string) => kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
      count(`${pdp.engine}: ${policy.object} objects`)
      if (policy.domain === 'ip') count(`${pdp.engine}: ipMatch ${shapedMatcher(policy).startsWith('ipMatch') ? 'first' : 'later'}`)
      const next = random(seed)
      for (let i = 0; i < REQUESTS_PER_POLICY; i++) {
        const query = randomQuery(next)
        const expected = oracleAnswer(oracle, requestValues(fields, query))
        deepStrictEqual(pdpAnswer(pdp, query), expected, pdp.engine)
        // The Casbin path scans like the oracle, so a share of the requests is enough to hold it to the same answers.
        if (casbin !== pdp && i % 8 === 0) deepStrictEqual(pdpAnswer(casbin, query), expected, 'casbin')
        effects.set(expected.effect, (effects.get(expected.effect) ?? 0) + 1)
        compared++
      }
    }),
    { numRuns: policies },
  )
  t.equal(compared, policies * REQUESTS_PER_POLICY, 'requests compared')
  t.ok(compared >= REQUESTS, `at least ${REQUESTS} requests`)
  // Casbin reordered the lines of a good share of the policies, so the comparison exercises its load order.
  t.ok(reordered >= policies / 10, `${reordered} of ${policies} policies reordered by Casbin's loader`)
  // Denials are the rarest: they need a deny line that matches under an effect that lets it decide.
  const floors = { allow: 0.1, deny: 0.004, none: 0.1, error: 0.01 }
  for (const [effect, floor] of Object.entries(floors)) t.ok((effects.get(effect) ?? 0) >= floor * compared, `${effect}: ${effects.get(effect)} requests`)
  // Most models are on the indexed path, and every object term it takes reaches it.
  t.ok((engines.get('indexed') ?? 0) >= policies / 2, `indexed: ${engines.get('indexed')}, casbin: ${engines.get('casbin')} policies`)
  t.ok((engines.get('casbin') ?? 0) >= policies / 20, `casbin: ${engines.get('casbin')} policies`)
  for (const object of Object.keys(OBJECT_TERMS).filter((o) => o !== 'keyMatch4')) t.ok((kinds.get(`indexed: ${object} objects`) ?? 0) > 0, `indexed: ${object} objects: ${kinds.get(`indexed: ${object} objects`)} policies`)
  t.equal(kinds.get('indexed: keyMatch4 objects'), undefined, 'keyMatch4 is never indexed')
  // ipMatch, which fails on requests that are no address, is indexed both first and after the other terms.
  for (const kind of ['indexed: ipMatch first', 'indexed: ipMatch later', 'casbin: ipMatch later']) t.ok((kinds.get(kind) ?? 0) > 0, `${kind}: ${kinds.get(kind)} policies`)
})

t.test('node-casbin\'s priority examples answer as Casbin expects', async (t) => {
  const examples = join(import.meta.dirname, '../../../node_modules/casbin/examples')
  // The PDP's r.sub and r.obj are objects; their id and type are what these models compare.
  const asPdpModel = (text: string) => text.replace(/\br\.sub\b(?!\.)/g, 'r.sub.id').replace(/\br\.obj\b(?!\.)/g, 'r.obj.type')
  const cases: [string, string, [string, string, string, string, boolean][]][] = [
    ['priority_model_explicit.conf', 'priority_policy_explicit.csv', [
      ['alice', 'data1', '', 'write', true], ['alice', 'data1', '', 'read', true], ['bob', 'data2', '', 'read', false], ['bob', 'data2', '', 'write', true],
      ['data1_deny_group', 'data1', '', 'read', false], ['data2_allow_group', 'data2', '', 'read', true],
    ]],
    ['subject_priority_model.conf', 'subject_priority_policy.csv', [['jane', 'data1', '', 'read', true], ['alice', 'data1', '', 'read', true], ['admin', 'data1', '', 'read', false]]],
    ['subject_priority_model_with_domain.conf', 'subject_priority_policy_with_domain.csv', [
      ['alice', 'data1', 'domain1', 'write', true], ['bob', 'data2', 'domain2', 'write', true], ['admin', 'data1', 'domain1', 'write', false],
    ]],
  ]
  for (const [modelFile, policyFile, expectations] of cases) {
    const modelSource = await readFile(join(examples, modelFile), 'utf8')
    const policySource = await readFile(join(examples, policyFile), 'utf8')
    const model = parseModelFile(asPdpModel(modelSource), modelFile)
    const lines = parsePolicyFile(policySource, model, policyFile)
    const oracle = await newEnforcer(newModelFromString(modelSource), new StringAdapter(policySource))
    const evaluators = [await createEvaluator(model, lines, policyFile), await createCasbinEvaluator(model, lines, policyFile)]
    for (const [sub, obj, dom, act, allowed] of expectations) {
      const query: PolicyQuery = {
        subject: { id: sub, roles: [], tenant: dom, attributes: {} },
        domain: dom,
        resource: { type: obj, id: '', attributes: {} },
        action: act,
        env: { time: 0, hour: 0, weekday: 4, ip: '' },
      }
      const [casbinAllowed, casbinRule] = oracle.enforceExSync(...(dom ? [sub, obj, dom, act] : [sub, obj, act]))
      t.equal(casbinAllowed, allowed, `${modelFile}: Casbin itself: ${sub} ${act} ${obj} ${dom}`)
      for (const evaluator of evaluators) {
        t.same(pdpAnswer(evaluator, query), { effect: allowed ? 'allow' : casbinRule.length > 0 ? 'deny' : 'none', rule: casbinRule }, `${modelFile} (${evaluator.engine}): ${sub} ${act} ${obj} ${dom}`)
      }
    }
  }
})

t.test('node-casbin examples without roles or an eft field load and answer as Casbin does', async (t) => {
  const examples = join(import.meta.dirname, '../../../node_modules/casbin/examples')
  const asPdpModel = (text: string) => text.replace(/\br\.sub\b(?!\.)/g, 'r.sub.id').replace(/\br\.obj\b(?!\.)/g, 'r.obj.type')
  const cases: [string, string, string[]][] = [
    ['basic_model.conf', 'basic_policy.csv', []],
    ['keymatch_model.conf', 'keymatch_policy.csv', ['/alice_data/x', '/bob_data/y', '/cathy_data/z']],
    ['glob_model.conf', 'glob_policy.csv', ['/foo/x', '/foo/x/y', '/bar']],
    ['ipmatch_model.conf', 'ipmatch_policy.csv', ['192.168.2.3', '10.0.0.1', '10.1.2.3']],
  ]
  for (const [modelFile, policyFile, extra] of cases) {
    const modelSource = await readFile(join(examples, modelFile), 'utf8')
    const policySource = await readFile(join(examples, policyFile), 'utf8')
    const model = parseModelFile(asPdpModel(modelSource), modelFile)
    const lines = parsePolicyFile(policySource, model, policyFile)
    const oracle = await newEnforcer(newModelFromString(modelSource), new StringAdapter(policySource))
    const evaluator = await createEvaluator(model, lines, policyFile)
    const values = (i: number) => [...new Set(lines.map((l) => l.values[i]!))]
    const subjects = [...values(0), ...extra, 'stranger']
    const objects = [...values(1), ...extra]
    const actions = [...values(2), 'GET', 'POST', 'read', 'write']
    let allowed = 0
    for (const sub of subjects) {
      for (const obj of objects) {
        for (const act of actions) {
          const query: PolicyQuery = { subject: { id: sub, roles: [], tenant: 'd', attributes: {} }, domain: 'd', resource: { type: obj, id: '', attributes: {} }, action: act, env: { time: 0, hour: 0, weekday: 4, ip: '' } }
          let expected: Answer
          try {
            const [ok, rule] = oracle.enforceExSync(sub, obj, act)
            expected = { effect: ok ? 'allow' : rule.length > 0 ? 'deny' : 'none', rule }
          } catch {
            // ipMatch throws on a subject that is not an address
            expected = { effect: 'error', rule: [] }
          }
          deepStrictEqual(pdpAnswer(evaluator, query), expected, `${modelFile}: ${sub} ${act} ${obj}`)
          if (expected.effect === 'allow') allowed++
        }
      }
    }
    t.ok(allowed > 0, `${modelFile}: loads (${evaluator.engine}) and answers as Casbin on ${subjects.length * objects.length * actions.length} requests, ${allowed} allowed`)
  }
})

t.test('a priority that is not an integer is refused with file and line', async (t) => {
  const model = parseModelFile(oracleModelText(EFFECTS[3]!, MATCHERS[0]!, 'first'))
  t.throws(() => parsePolicyFile('p, 1, a, *, documents, read, true, allow\np, high, a, *, documents, read, true, deny', model), { line: 2, message: /priority must be an integer, got "high"/ })
})

t.test('patterns that hang or break Casbin\'s functions are refused with file and line', async (t) => {
  const withObject = (fn: string) => modelText(EFFECTS[0]!, MATCHERS[0]!.replace('r.obj.type == p.obj', `${fn}(r.obj.id, p.obj)`))
  const lines: [string, string, RegExp][] = [
    ['keyMatch2', '/docs/:', /keyMatch2 never finishes on the pattern "\/docs\/:"/],
    ['keyMatch2', '/:/docs', /keyMatch2 never finishes/],
    ['keyMatch3', '/docs/{id', /keyMatch3 never finishes/],
    ['keyMatch5', '/docs/{id', /keyMatch5 never finishes/],
    ['regexMatch', '*docs', /regexMatch fails on the pattern "\*docs": Invalid regular expression/],
    ['ipMatch', 'not-an-address', /ipMatch fails on the pattern "not-an-address"/],
  ]
  for (const [fn, pattern, message] of lines) {
    const model = parseModelFile(withObject(fn))
    const usable = fn === 'ipMatch' ? '10.0.0.0/8' : '/docs/*'
    t.throws(() => parsePolicyFile(`p, admin, *, ${usable}, read, true, allow\np, admin, *, ${pattern}, read, true, allow`, model, 'policy.csv'), { file: 'policy.csv', line: 2, message }, `${fn}: ${pattern}`)
  }
  // The plain Enforcer fails on the broken ones at decision time (the hanging ones are not run: they would hang).
  const oracle = await plainEnforcer(withObject('regexMatch'), 'p, admin, *, *docs, read, true, allow')
  t.throws(() => oracle.enforceExSync({ id: 'admin' }, 'acme', { id: '/docs/1' }, 'read', {}), /Invalid regular expression/)

  t.throws(() => parseModelFile(modelText(EFFECTS[0]!, MATCHERS[0]!.replace('r.obj.type == p.obj', 'keyMatch2(p.obj, r.obj.id)'))), {
    message: /matcher passes the request value "r\.obj" as the pattern of keyMatch2/,
  })
  t.throws(() => parseModelFile(modelText(EFFECTS[0]!, MATCHERS[0]!.replace('r.obj.type == p.obj', 'regexMatch(p.obj, r.sub.attributes.pattern)'))), {
    message: /as the pattern of regexMatch: the pattern must come from the policy/,
  })
  const model = parseModelFile(EXAMPLE_MODEL)
  t.throws(() => parsePolicyFile('p, admin, *, documents, read, "keyMatch2(r.obj.id, ""/docs/:"")", allow', model, 'policy.csv'), { line: 1, message: /condition .* calls keyMatch2 never finishes/ })
  t.throws(() => parsePolicyFile('p, admin, *, documents, read, "regexMatch(r.obj.id, r.sub.attributes.pattern)", allow', model, 'policy.csv'), { line: 1, message: /as the pattern of regexMatch/ })
  t.doesNotThrow(() => parsePolicyFile('p, admin, *, documents, read, "keyMatch2(r.obj.id, ""/docs/:id"") && ipMatch(r.env.ip, ""10.0.0.0/8"")", allow', model), 'usable patterns load')
})

t.test('random policies with asserted roles: the indexed evaluator answers as the fallback does', async (t) => {
  let compared = 0
  const effects = new Map<string, number>()
  const property = (policies: fc.Arbitrary<GeneratedPolicy>, queries: fc.Arbitrary<PolicyQuery>) =>
    fc.asyncProperty(policies, fc.array(fc.tuple(queries, fc.boolean()), { minLength: 20, maxLength: 20 }), async (policy, requests) => {
      const [indexed, casbin] = await bothEvaluators(modelText(policy.effect, policy.matcher), policyText(policy))
      deepStrictEqual([indexed.engine, indexed.ruleCount, [...indexed.roles].sort()], ['indexed', casbin.ruleCount, [...casbin.roles].sort()])
      for (const [query, explain] of requests) {
        compare(indexed, casbin, query, explain)
        const effect = casbin.evaluate(query, false).effect
        effects.set(effect, (effects.get(effect) ?? 0) + 1)
        compared++
      }
    })
  // Roles asserted in the request have no counterpart in a plain Enforcer: here the two evaluators are held to each other.
  // Fixed seeds: the floors below count outcomes, and an unlucky random draw must not fail them.
  await fc.assert(property(policyArb, queryArb), { numRuns: 150, seed: 15 })
  await fc.assert(property(densePolicyArb, denseQueryArb), { numRuns: 100, seed: 16 })
  t.equal(compared, 5_000, 'requests compared')
  // The generators reach every outcome, so the comparison is not only of trivial denials.
  const floors = { allow: 500, deny: 100, none: 500, error: 40 }
  for (const [effect, floor] of Object.entries(floors)) t.ok((effects.get(effect) ?? 0) >= floor, `${effect}: ${effects.get(effect)} requests`)
})

t.test('subjects with no links of their own share role-cache entries by asserted roles, never each other\'s own lines', async (t) => {
  const policy = [
    'p, alice, *, documents, read, true, allow',
    'p, editor, *, documents, update, true, allow',
    'p, employee, *, documents, create, true, allow',
    'g, editor, employee, *',
    'g, carol, editor, *',
  ].join('\n')
  const [indexed, casbin] = await bothEvaluators(EXAMPLE_MODEL, policy)
  const ask = (id: string, roles: string[], action: string): PolicyQuery => ({
    subject: { id, roles, tenant: 'acme', attributes: {} },
    domain: 'acme',
    resource: { type: 'documents', id: 'd1', attributes: {} },
    action,
    env: { time: 1772366400, hour: 0, weekday: 0, ip: '10.0.0.1' },
  })
  // Alice fills the cache entry for "asserts editor" first; Bob, asserting the same, must not inherit her own line.
  const asked: [PolicyQuery, string][] = [
    [ask('alice', ['editor'], 'read'), 'allow'],
    [ask('bob', ['editor'], 'read'), 'none'],
    [ask('bob', ['editor'], 'create'), 'allow'],
    [ask('alice', ['editor'], 'update'), 'allow'],
    [ask('alice', [], 'read'), 'allow'],
    [ask('bob', [], 'update'), 'none'],
    [ask('carol', [], 'create'), 'allow'],
    [ask('editor', [], 'update'), 'allow'],
    [ask('dave', ['alice'], 'read'), 'allow'],
  ]
  for (const [query, effect] of asked) {
    compare(indexed, casbin, query, false)
    t.equal(indexed.evaluate(query, false).effect, effect, `${query.subject.id} asserting [${query.subject.roles.join(', ')}] ${query.action}`)
  }
})

t.test('generated models with asserted roles (g with and without domains, g2, patterns): the indexed evaluator answers as the fallback does', async (t) => {
  let compared = 0
  let allowed = 0
  const queries = queryArb.map((q) => ({ ...q, resource: { ...q.resource, id: q.resource.id === 'x' ? '/docs/1' : '/users/7/profile' } }))
  await fc.assert(
    fc.asyncProperty(shapedPolicyArb, fc.array(fc.tuple(queries, fc.boolean()), { minLength: 20, maxLength: 20 }), async (policy, requests) => {
      const model = parseModelFile(shapedModelText(policy))
      const lines = parsePolicyFile(shapedPolicyText(policy), model)
      const indexed = createIndexedEvaluator(model, lines)
      if (!indexed) return
      const casbin = await createCasbinEvaluator(model, lines)
      for (const [query, explain] of requests) {
        compare(indexed, casbin, query, explain)
        if (casbin.evaluate(query, false).effect === 'allow') allowed++
        compared++
      }
    }),
    { numRuns: 120 },
  )
  t.ok(compared >= 1_000, `${compared} requests compared`)
  t.ok(allowed >= compared / 20, `${allowed} allowed`)
})

t.test('the bundled example policy: the indexed evaluator answers as node-casbin does', async (t) => {
  const [indexed, casbin] = await bothEvaluators(EXAMPLE_MODEL, EXAMPLE_POLICY)
  const exampleQuery = queryArb.map((q) => q)
  const names = fc.constantFrom('alice', 'bob', 'carol', 'dave', 'erin', 'admin', 'manager', 'employee')
  const tenants = fc.constantFrom('acme', 'globex', 'default')
  let compared = 0
  fc.assert(
    fc.property(exampleQuery, names, fc.uniqueArray(names, { maxLength: 2 }), tenants, fc.constantFrom('create', 'read', 'update', 'delete'), fc.constantFrom('documents', 'users', 'system.logs', 'system.config'), fc.boolean(), (base, id, roles, tenant, action, type, explain) => {
      const query: PolicyQuery = {
        ...base,
        subject: { ...base.subject, id, roles, tenant, attributes: { ...base.subject.attributes, team: 'a' } },
        domain: tenant,
        resource: { ...base.resource, type, attributes: { ...base.resource.attributes, owner: base.resource.attributes.owner === 'u0' ? id : 'zed' } },
        action,
      }
      compare(indexed, casbin, query, explain)
      compared++
    }),
    { numRuns: 3000 },
  )
  t.equal(compared, 3000, 'requests compared')
})

t.test('role chains longer than Casbin follows: both stop at the same depth', async (t) => {
  const chain = Array.from({ length: 13 }, (_, i) => `level${i}`)
  const policy = [
    ...chain.map((role) => `p, ${role}, *, documents, read, true, allow`),
    ...chain.slice(1).map((role, i) => `g, ${chain[i]}, ${role}, ${i % 2 === 0 ? '*' : 'acme'}`),
    'g, deep, level0, acme',
  ].join('\n')
  for (const effect of ['some(where (p.eft == allow))', 'some(where (p.eft == allow)) && !some(where (p.eft == deny))']) {
    const [indexed, casbin] = await bothEvaluators(modelText(effect, MATCHERS[0]!), policy)
    for (const [id, roles, tenant] of [['deep', [], 'acme'], ['deep', [], 'globex'], ['x', ['level0'], 'acme'], ['x', ['level2'], 'acme'], ['x', ['level3'], 'globex']] as const) {
      const query: PolicyQuery = {
        subject: { id, roles, tenant, attributes: {} },
        domain: tenant,
        resource: { type: 'documents', id: 'd', attributes: {} },
        action: 'read',
        env: { time: 0, hour: 0, weekday: 4, ip: '' },
      }
      t.same(indexed.evaluate(query, true), casbin.evaluate(query, true), `${effect}: ${id} ${roles.join(',')} in ${tenant}`)
    }
  }
  const [, casbin] = await bothEvaluators(modelText(EFFECTS[2]!, MATCHERS[0]!), policy)
  const last = casbin.evaluate({ subject: { id: 'deep', roles: [], tenant: 'acme', attributes: {} }, domain: 'acme', resource: { type: 'documents', id: 'd', attributes: {} }, action: 'read', env: { time: 0, hour: 0, weekday: 4, ip: '' } }, false)
  t.equal(last.matched[0]?.rule[0], 'level9', 'Casbin reaches ten links from the user and no further (the last allow it records)')
})

t.test('models the indexed evaluator cannot prove it handles fall back to Casbin and say why', async (t) => {
  const cases: [string, string, string, string, RegExp][] = [
    ['keyMatch4 in the matcher', MATCHERS[0]!.replace('r.obj.type == p.obj', 'keyMatch4(r.obj.id, p.obj)'), 'p, admin, *, /docs/{id}, read, true, allow', 'matcher_term', /keyMatch4\(\.\.\.\)/],
    ['keyGet2 in the matcher', MATCHERS[0]!.replace('r.obj.type == p.obj', 'keyGet2(r.obj.id, p.obj, "id") == "1"'), 'p, admin, *, /docs/:id, read, true, allow', 'matcher_term', /a "==" expression/],
    ['ipMatch between indexed terms', MATCHERS[0]!.replace('r.obj.type == p.obj', 'ipMatch(r.env.ip, p.obj) && r.obj.type == p.obj'), 'p, admin, *, 10.0.0.0/8, read, true, allow', 'matcher_order', /ipMatch\(\.\.\.\) before an indexed term/],
    ['g on the resource', MATCHERS[0]!.replace('r.obj.type == p.obj', 'g(r.obj.id, p.obj, r.dom)'), 'p, admin, *, docs, read, true, allow', 'matcher_term', /g\(\.\.\.\)/],
    ['eval before the other terms', 'eval(p.cond) && g(r.sub.id, p.sub, r.dom) && r.obj.type == p.obj', 'p, admin, *, documents, read, true, allow', 'matcher_eval', /eval\(\.\.\.\) is not the last term/],
    ['no p line', MATCHERS[0]!, 'g, alice, admin, acme', 'no_policy_lines', /no "p" lines/],
    ['a condition that breaks out of its parentheses', MATCHERS[0]!, 'p, admin, *, documents, read, true) || (true, allow', 'condition', /does not parse|changes the structure/],
  ]
  for (const [name, matcher, policy, code, reason] of cases) {
    const model = parseModelFile(modelText(EFFECTS[2]!, matcher))
    let lines
    try {
      lines = parsePolicyFile(policy, model)
    } catch {
      // The loader already refuses this line; nothing reaches an evaluator.
      t.pass(`${name}: refused by the loader`)
      continue
    }
    t.equal(createIndexedEvaluator(model, lines), undefined, `${name}: no indexed evaluator`)
    const evaluator = await createEvaluator(model, lines)
    t.equal(evaluator.engine, 'casbin', `${name}: Casbin answers`)
    t.match(evaluator.fallbackReason, reason, `${name}: says why`)
    t.equal(evaluator.fallbackCode, code, `${name}: under the code ${code}`)
  }

  const model = parseModelFile(modelText(EFFECTS[2]!, MATCHERS[0]!.replace('r.obj.type == p.obj', 'keyMatch4(r.obj.id, p.obj)')))
  const evaluator = await createEvaluator(model, parsePolicyFile('p, admin, *, /docs/*, read, true, allow', model))
  const query: PolicyQuery = {
    subject: { id: 'erin', roles: ['admin'], tenant: 'acme', attributes: {} },
    domain: 'acme',
    resource: { type: 'documents', id: '/docs/42', attributes: {} },
    action: 'read',
    env: { time: 0, hour: 0, weekday: 4, ip: '' },
  }
  t.same(evaluator.evaluate(query, true), { effect: 'allow', matched: [{ ptype: 'p', rule: ['admin', '*', '/docs/*', 'read', 'true', 'allow'], source: 'policy.csv:1' }], roles: ['admin'] }, 'the fallback still decides')
})

t.test('the bundled example is served by the indexed evaluator', async (t) => {
  const model = parseModelFile(EXAMPLE_MODEL)
  const evaluator = await createEvaluator(model, parsePolicyFile(EXAMPLE_POLICY, model))
  t.equal(evaluator.engine, 'indexed')
  t.equal(evaluator.fallbackReason, undefined)
})

t.test('in lists and multi-line matchers: accepted where Casbin compiles them, refused with file and line where it cannot', async (t) => {
  const base = 'g(r.sub.id, p.sub, r.dom) && p.dom == r.dom && r.obj.type == p.obj'
  const policy = 'p, admin, acme, documents, read, true, allow\ng, alice, admin, acme'
  const query = (action: string): PolicyQuery => ({
    subject: { id: 'alice', roles: [], tenant: 'acme', attributes: { tier: 'gold' } },
    domain: 'acme',
    resource: { type: 'documents', id: 'd', attributes: {} },
    action,
    env: { time: 0, hour: 0, weekday: 4, ip: '' },
  })
  const oracleFails = async (modelSource: string, policySource: string) => {
    const oracle = await plainEnforcer(modelSource, policySource)
    return t.throws(() => oracle.enforceExSync(...requestValues(requestFieldsOf(parseModelFile(EXAMPLE_MODEL)), query('read'))), 'the plain Enforcer fails on it too')
  }

  // A matcher over three lines, with an in list last: indexed, and the same answers as the plain Enforcer.
  const split = modelText(EFFECTS[0]!, `${base} && \\\n  (p.act == "*" || p.act == r.act) && \\\n  r.act in ('read', "update")`)
  const model = parseModelFile(split)
  t.equal(model.matcher, `g(r_sub.id, p_sub, r_dom) && p_dom == r_dom && r_obj.type == p_obj &&(p_act == "*" || p_act == r_act) &&r_act in ('read', "update")`, 'joined as Casbin joins it')
  const lines = parsePolicyFile(policy, model)
  const evaluator = await createEvaluator(model, lines)
  t.equal(evaluator.engine, 'indexed')
  const oracle = await plainEnforcer(split, policy)
  for (const action of ['read', 'update', 'delete']) {
    t.same(pdpAnswer(evaluator, query(action)), oracleAnswer(oracle, requestValues(requestFieldsOf(model), query(action))), `${action}: as the plain Enforcer`)
  }
  t.equal(evaluator.evaluate(query('read'), false).effect, 'allow')
  t.equal(evaluator.evaluate(query('update'), false).effect, 'none', 'the policy line is for read only')

  // A definition is reported at the line where it starts.
  const matcherLine = EXAMPLE_MODEL.split('\n').findIndex((l) => l.startsWith('m = ')) + 1
  t.throws(() => parseModelFile(split.replace('[matchers]\n', '[matchers]\n\n').replace('m = ', 'x = ')), { line: matcherLine + 1, message: /key "x" does not belong in \[matchers\]/ })

  // Refused: what Casbin would fail on at every decision, each checked against the plain Enforcer.
  const single = modelText(EFFECTS[0]!, `${base} && r.act in ("read")`)
  t.throws(() => parseModelFile(single, 'model.conf'), { file: 'model.conf', line: matcherLine, message: /uses "in" on a single value/ })
  await oracleFails(single, policy)

  const early = modelText(EFFECTS[0]!, `${base} && r.act in ("read", "update") && r.obj.type == p.obj`)
  t.throws(() => parseModelFile(early), { line: matcherLine, message: /"&&" or "\|\|" after "in"/ })
  await oracleFails(early, policy)

  const grouped = modelText(EFFECTS[0]!, `${base} && (p.act == "*" || g(r.sub.id, p.sub, r.dom)) && r.act in ("read", "update")`)
  t.throws(() => parseModelFile(grouped), { line: matcherLine, message: /does not parse as Casbin compiles it/ })
  await oracleFails(grouped, policy)

  const conditioned = parseModelFile(EXAMPLE_MODEL)
  const listCondition = 'p, admin, acme, documents, read, "r.sub.attributes.tier in (\'gold\', \'silver\')", allow'
  t.throws(() => parsePolicyFile(listCondition, conditioned, 'policy.csv'), { file: 'policy.csv', line: 1, message: /does not parse once spliced into the matcher as Casbin compiles it/ })
  await oracleFails(EXAMPLE_MODEL, listCondition)
})
