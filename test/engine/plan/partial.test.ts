import t from 'tap'
import { createPdp } from '../../../src/engine/pdp.js'
import { describeFilter, matchesFilter } from '../../../src/engine/plan/filter.js'
import { buildPolicyBundle } from '../../../src/engine/policy/bundle.js'

const now = Date.parse('2026-03-01T12:00:00Z')

async function pdpOf(model: string, policy: string, request?: string) {
  const files = new Map([
    ['model.conf', model],
    ['policy.csv', policy],
  ])
  if (request !== undefined) files.set('request.yaml', request)
  const bundle = await buildPolicyBundle({ dir: 'inline', files, version: 'v1', stamp: '' })
  return createPdp({ policy: { current: bundle }, now: () => now, defaultTenant: 'default' })
}

const RBAC = (effect: string, matcher: string) =>
  `[request_definition]\nr = sub, dom, obj, act, env\n[policy_definition]\np = sub, dom, obj, act, cond, eft\n[role_definition]\ng = _, _, _\n[policy_effect]\ne = ${effect}\n[matchers]\nm = ${matcher}\n`
const MATCHER = 'g(r.sub.id, p.sub, r.dom) && r.obj.type == p.obj && r.act == p.act && eval(p.cond)'
const alice = { subject: { id: 'alice', tenant: 'acme' }, action: 'read', resource: { type: 'docs' } }

t.test('request fields mapped by request.yaml: a model over resource ids plans a keyMatch filter', async (t) => {
  const model = '[request_definition]\nr = user, path, act\n[policy_definition]\np = user, path, act\n[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = r.user == p.user && keyMatch(r.path, p.path) && r.act == p.act\n'
  const pdp = await pdpOf(model, 'p, alice, /reports/*, read\np, alice, /inbox, read\np, bob, /admin/*, read\n', 'user: subject.id\npath: resource.id\nact: action\n')
  const plan = await pdp.plan(alice)
  t.same(plan.filter, { op: 'or', args: [{ op: 'keyMatch', field: 'resource.id', pattern: '/reports/*' }, { op: 'keyMatch', field: 'resource.id', pattern: '/inbox' }] })
  for (const id of ['/reports/q3', '/inbox', '/inbox/2', '/admin/x', '']) {
    const decided = await pdp.decide({ ...alice, resource: { type: 'docs', id } })
    t.equal(matchesFilter(plan.filter!, { id }), decided.decision === 'allow', id)
  }
})

t.test('keyMatch2-5, regexMatch and globMatch on a resource field plan a matches filter that agrees with decisions', async (t) => {
  const model = (fn: string) =>
    `[request_definition]\nr = user, path, act\n[policy_definition]\np = user, path, act\n[policy_effect]\ne = some(where (p.eft == allow))\n[matchers]\nm = r.user == p.user && ${fn}(r.path, p.path) && r.act == p.act\n`
  const request = 'user: subject.id\npath: resource.id\nact: action\n'
  const ids = ['/users/1', '/users/1/', '/users/😀', '/users/a\nb', '/users', '/users/1/posts/1', '/users/1/posts/2', '/users/1?tab=2', '/users/1/x?y', '/img/a.png', '/img/.hidden.png', '/img//a.png', '/img/a.png/', 'img/a.png', '', '/docs/42', '/docs/42.json', '/docs/x']
  const cases: [string, string[]][] = [
    ['keyMatch2', ['/users/:id', '/users/:id/posts/*', '*']],
    ['keyMatch3', ['/users/{id}', '/users/{id}/posts/{post}']],
    ['keyMatch4', ['/users/{id}/posts/{post}', '/users/*']],
    ['keyMatch5', ['/users/{id}', '/users/{id}/x']],
    ['regexMatch', ['^/docs/\\d+(\\.json)?$', 'users/1', '^/img/[^/]+\\.png$']],
    ['globMatch', ['/img/*.png', '*/users/*', '/users/1/*']],
  ]
  for (const [fn, patterns] of cases) {
    const pdp = await pdpOf(model(fn), patterns.map((p) => `p, alice, ${p}, read`).join('\n'), request)
    const plan = await pdp.plan(alice)
    t.equal(plan.plan, 'conditional', fn)
    t.match(plan.filter, { op: patterns.length > 1 ? 'or' : 'matches' }, fn)
    for (const id of ids) {
      const decided = await pdp.decide({ ...alice, resource: { type: 'docs', id } })
      t.equal(matchesFilter(plan.filter!, { id }), decided.decision === 'allow', `${fn} on ${JSON.stringify(id)}`)
    }
  }
  const pdp = await pdpOf(model('keyMatch2'), 'p, alice, /users/:id, read\n', request)
  const filter = (await pdp.plan(alice)).filter!
  t.same(filter, { op: 'matches', field: 'resource.id', function: 'keyMatch2', pattern: '/users/:id', regex: '^/users/[^/]+$' })
  t.equal(describeFilter(filter), 'keyMatch2(resource.id, "/users/:id")', 'pdp plan prints the call as the policy wrote it')
})

t.test('what a filter cannot express is named with its line, whatever the effect', async (t) => {
  const cases: [string, RegExp][] = [
    ['r.obj.attributes.a + 1 > 2', /operator "\+"/],
    ['r.obj.attributes.a === "x"', /operator "==="/],
    ['"regexMatch(r.obj.attributes.a, ""^x.$"")"', /regexMatch\(resource\.attributes\.a, "\^x\.\$"\).*single-character wildcard/],
    ['"keyMatch4(r.obj.id, ""/a/{id}/b/{id}"")"', /keyMatch4.*repeated parameters/],
    ['"globMatch(r.obj.id, ""/a/?"")"', /globMatch.*only literal characters/],
    ['"ipMatch(r.obj.id, ""10.0.0.0/8"")"', /calls ipMatch\(\.\.\.\)/],
    ['r.obj.attributes.tags.length > 0', /resource\.attributes\.tags/],
    ['r.sub.attributes.tier in r.obj.attributes.tiers', /"in" test/],
    ['r.obj.attributes["2fa"] == true', /attribute "2fa"/],
  ]
  for (const [condition, reason] of cases) {
    const pdp = await pdpOf(RBAC('some(where (p.eft == allow))', MATCHER), `p, alice, acme, docs, read, true, deny\np, alice, acme, docs, read, ${condition}, allow\n`)
    t.match(await pdp.plan(alice), { plan: 'unsupported', unsupported: { rule: 'policy.csv:2', reason } }, condition)
  }
})

t.test('a matcher that cannot hold for this request makes its conditions irrelevant', async (t) => {
  const pdp = await pdpOf(RBAC('some(where (p.eft == allow))', MATCHER), 'p, bob, acme, docs, read, r.obj.attributes.a + 1 > 2, allow\np, alice, acme, docs, read, r.obj.attributes.owner == r.sub.id, allow\n')
  t.match(await pdp.plan(alice), { plan: 'conditional', filter: { op: 'eq', field: 'resource.attributes.owner', value: 'alice' } })
})

t.test('a condition that fails for every resource makes the decision an error, so the plan denies', async (t) => {
  const pdp = await pdpOf(RBAC('some(where (p.eft == allow))', MATCHER), 'p, alice, acme, docs, read, r.sub.attributes.profile.region == "eu", allow\np, alice, acme, docs, read, true, allow\n')
  const decided = await pdp.decide({ ...alice, resource: { type: 'docs', id: 'd1' } })
  t.match(decided, { decision: 'deny', reasons: ['policy_error'] })
  t.match(await pdp.plan(alice), { plan: 'always_denied' })
})

t.test('a plan too large to be one query is refused, not sent', async (t) => {
  const lines = Array.from({ length: 300 }, (_, i) => `p, alice, acme, docs, read, r.obj.attributes.n${i} == 1, ${i % 2 === 0 ? 'allow' : 'deny'}`)
  const pdp = await pdpOf(RBAC('priority(p.eft) || deny', MATCHER), lines.join('\n'))
  t.match(await pdp.plan(alice), { plan: 'unsupported', unsupported: { reason: /more than 10000 nodes/ } })
})
