import t from 'tap'
import { cerbosVerdict, toCerbosCheck } from '../../scripts/bench/cerbos.js'
import { EXAMPLE_POLICY_DIR } from '../../scripts/bench/generate-policy.js'
import { exampleWorkload, forwardAuthWorkload } from '../../scripts/bench/workload.js'
import { loadPolicyBundle } from '../../src/engine/policy/bundle.js'

interface Body {
  subject: { id: string; tenant: string; roles: string[]; attributes: { team: string } }
  action: string
  resource: { type: string; id?: string; attributes?: Record<string, unknown> }
}

t.test('the example workload names every subject, even with more subjects than its default bodies', async (t) => {
  const workload = exampleWorkload(25_000, { nowMs: 0 })
  t.equal(workload.bodies.length, 25_000)
  const ids = new Set(workload.bodies.map((b) => (JSON.parse(b) as Body).subject.id))
  t.equal(ids.size, 25_000)
  const small = exampleWorkload(100, { nowMs: 0 })
  t.equal(small.bodies.length, 20_000, 'at least the default count of bodies')
  t.equal(new Set(small.bodies.map((b) => (JSON.parse(b) as Body).subject.id)).size, 100)
})

t.test('a Cerbos check asks what the /decide body asks', async (t) => {
  const [first] = exampleWorkload(10, { nowMs: 0 }).bodies
  const body = JSON.parse(first!) as Body
  const check = JSON.parse(toCerbosCheck(first!, 7)) as {
    requestId: string
    principal: { id: string; roles: string[]; attr: Record<string, unknown> }
    resources: { actions: string[]; resource: { kind: string; id: string; attr: Record<string, unknown> } }[]
  }
  t.equal(check.requestId, 'bench-7')
  t.same(check.principal, { id: body.subject.id, roles: body.subject.roles, attr: { team: body.subject.attributes.team, tenant: body.subject.tenant } })
  t.equal(check.resources.length, 1)
  t.same(check.resources[0], { actions: [body.action], resource: { kind: body.resource.type, id: body.resource.id ?? 'new', attr: body.resource.attributes ?? {} } })
  const create = JSON.parse(toCerbosCheck(JSON.stringify({ ...body, action: 'create', resource: { type: 'documents' } }), 0)) as typeof check
  t.same(create.resources[0]!.resource, { kind: 'documents', id: 'new', attr: {} })
  t.equal(cerbosVerdict('{"results":[{"actions":{"read":"EFFECT_ALLOW"}}]}'), 'allow')
  t.equal(cerbosVerdict('{"results":[{"actions":{"read":"EFFECT_DENY"}}]}'), 'deny')
  t.equal(cerbosVerdict('{"code":3}'), undefined)
})

t.test('every forward-auth request is one the example routes.yaml maps', async (t) => {
  const workload = await forwardAuthWorkload(50, 20, 900, { nowMs: 0, bodies: 500 })
  t.teardown(workload.cleanup)
  const { routes } = await loadPolicyBundle(EXAMPLE_POLICY_DIR)
  t.equal(workload.requests!.length, 500)
  const tokens = new Set<string>()
  const types = new Set<string>()
  const unmapped: string[] = []
  for (const request of workload.requests!) {
    tokens.add(request.headers.authorization!)
    const target = routes.match(request.headers['x-forwarded-method']!, request.headers['x-forwarded-uri']!)
    if (target) types.add(target.resourceType)
    else unmapped.push(`${request.headers['x-forwarded-method']} ${request.headers['x-forwarded-uri']}`)
  }
  t.same(unmapped, [])
  t.same(new Set(workload.requests!.map((r) => r.path)), new Set(['/authz/forward']))
  t.equal(tokens.size, 20, 'the tokens are cycled')
  t.same([...types].sort(), ['documents', 'system.config', 'system.logs', 'users'])
})
