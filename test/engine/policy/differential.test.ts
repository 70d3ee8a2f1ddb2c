import t from 'tap'
import fc from 'fast-check'
import { deepStrictEqual } from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createCasbinEvaluator } from '../../../src/engine/policy/casbin-evaluator.js'
import { createEvaluator } from '../../../src/engine/policy/evaluator-factory.js'
import type { PolicyEvaluator, PolicyQuery } from '../../../src/engine/policy/evaluator.js'
import { createIndexedEvaluator } from '../../../src/engine/policy/indexed-evaluator.js'
import { parseModelFile, parsePolicyFile } from '../../../src/engine/policy/policy-files.js'
import { EXAMPLE_POLICIES } from '../../helpers/build.js'

/*
 * The indexed evaluator must answer exactly what node-casbin's enforcer answers: same effect, same matched
 * rule (values, file and line), same effective roles, same error. Random policies and requests are run through
 * both; every generated request is one compared case.
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
  // a number: 0 is indeterminate, 3 is Casbin's Deny whatever the line's effect, NaN is none of them
  'r.sub.attributes.level',
  'r.sub.attributes.level - 2',
  // a string (empty is indeterminate) or undefined (an error)
  'r.obj.attributes.owner',
  'r.sub.attributes.tier in ("gold")',
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

t.test('random policies: the indexed evaluator answers as node-casbin does', async (t) => {
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
  await fc.assert(property(policyArb, queryArb), { numRuns: 300 })
  await fc.assert(property(densePolicyArb, denseQueryArb), { numRuns: 200 })
  t.equal(compared, 10_000, 'requests compared')
  // The generators reach every outcome, so the comparison is not only of trivial denials.
  const floors = { allow: 1000, deny: 200, none: 1000, error: 80 }
  for (const [effect, floor] of Object.entries(floors)) t.ok((effects.get(effect) ?? 0) >= floor, `${effect}: ${effects.get(effect)} requests`)
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
  const cases: [string, string, string, RegExp][] = [
    ['keyMatch in the matcher', MATCHERS[0]!.replace('r.obj.type == p.obj', 'keyMatch(r.obj.id, p.obj)'), 'p, admin, *, /docs/*, read, true, allow', /keyMatch\(\.\.\.\)/],
    ['regexMatch in the matcher', MATCHERS[0]!.replace('r.obj.type == p.obj', 'regexMatch(r.obj.type, p.obj)'), 'p, admin, *, doc.*, read, true, allow', /regexMatch\(\.\.\.\)/],
    ['eval before the other terms', 'eval(p.cond) && g(r.sub.id, p.sub, r.dom) && r.obj.type == p.obj', 'p, admin, *, documents, read, true, allow', /eval\(\.\.\.\) is not the last term/],
    ['no p line', MATCHERS[0]!, 'g, alice, admin, acme', /no "p" lines/],
    ['a condition that breaks out of its parentheses', MATCHERS[0]!, 'p, admin, *, documents, read, true) || (true, allow', /does not parse|changes the structure/],
  ]
  for (const [name, matcher, policy, reason] of cases) {
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
  }

  const model = parseModelFile(modelText(EFFECTS[2]!, MATCHERS[0]!.replace('r.obj.type == p.obj', 'keyMatch(r.obj.id, p.obj)')))
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
