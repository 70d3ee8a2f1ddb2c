import t from 'tap'
import { appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import { auditCapture, build, CALLER, manualClock, policyCopy, trustedContext } from '../helpers/build.js'

const carol = { id: 'carol', tenant: 'acme' }

t.test('POST /plan answers for every document at once, as decisions would one by one', async (t) => {
  const clock = manualClock()
  const capture = auditCapture()
  const app = await build(t, { env: { ...CALLER.env, PDP_DECISION_LOG: 'stdout' }, now: clock.now, auditStream: capture.stream })
  const plan = async (body: object) => (await app.inject({ method: 'POST', url: '/plan', headers: CALLER.headers, payload: body })).json()
  const context = trustedContext(clock.now())

  const own = await plan({ subject: carol, action: 'read', resource: { type: 'documents' }, context })
  t.match(own, { plan: 'conditional', filter: { op: 'eq', field: 'resource.attributes.owner', value: 'carol' }, reasons: ['policy_allow'] })
  t.match(own.decisionId, /^[0-9a-f-]{36}$/)
  t.type(own.policyVersion, 'string')
  t.notOk('stepUp' in own, 'no step-up from a trusted situation')

  t.match(await plan({ subject: { id: 'alice', tenant: 'acme' }, action: 'delete', resource: { type: 'documents' }, context }), { plan: 'always_allowed' })
  t.match(await plan({ subject: carol, action: 'create', resource: { type: 'documents' }, context }), { plan: 'always_allowed' })
  t.match(await plan({ subject: { id: 'zed', tenant: 'acme' }, action: 'read', resource: { type: 'documents' }, context }), {
    plan: 'always_denied',
    reasons: ['no_matching_policy'],
  })
  const bob = await plan({ subject: { id: 'bob', tenant: 'acme', attributes: { team: 'blue' } }, action: 'read', resource: { type: 'documents' }, context })
  t.same(bob.filter, {
    op: 'or',
    args: [
      { op: 'eq', field: 'resource.attributes.owner', value: 'bob' },
      { op: 'and', args: [{ op: 'exists', field: 'resource.attributes.team' }, { op: 'eq', field: 'resource.attributes.team', value: 'blue' }] },
    ],
  }, 'roles from g lines count: a manager reads his own and his team\'s documents')

  const line = capture.lines.find((l) => l.decision_id === own.decisionId)
  t.match(line, { type: 'decision', source: 'plan', verdict: 'allow', plan: { kind: 'conditional', filter: own.filter }, policy_version: own.policyVersion })
})

t.test('risk applies as in a decision: the same step-up', async (t) => {
  const clock = manualClock()
  const app = await build(t, { env: CALLER.env, now: clock.now })
  const context = { device: { id: 'new-phone' }, session: { authTime: Math.floor(clock.now() / 1000) - 600, amr: ['pwd'] }, sensitivity: 'high' }
  const planned = (await app.inject({ method: 'POST', url: '/plan', headers: CALLER.headers, payload: { subject: carol, action: 'read', resource: { type: 'documents' }, context } })).json()
  const decided = (
    await app.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { subject: carol, action: 'read', resource: { type: 'documents', id: 'd1', attributes: { owner: 'carol' } }, context } })
  ).json()
  t.equal(decided.decision, 'step_up')
  t.match(planned, { plan: 'conditional', filter: { op: 'eq', field: 'resource.attributes.owner', value: 'carol' } })
  t.same(planned.stepUp, decided.stepUp)
  t.same(planned.reasons, decided.reasons)
})

t.test('just-in-time grants count; one scoped to a single resource makes the plan say so', async (t) => {
  const clock = manualClock()
  const app = await build(t, { env: CALLER.env, now: clock.now })
  const plan = async () =>
    (await app.inject({ method: 'POST', url: '/plan', headers: CALLER.headers, payload: { subject: { id: 'erin', tenant: 'acme' }, action: 'read', resource: { type: 'users' }, context: trustedContext(clock.now()) } })).json()
  const grant = (payload: object) => app.inject({ method: 'POST', url: '/admin/grants', headers: CALLER.headers, payload: { subject: 'erin', durationSeconds: 600, justification: 'incident 42', ...payload } })

  t.match(await plan(), { plan: 'always_denied' })
  t.equal((await grant({ role: 'manager', tenant: 'acme' })).statusCode, 201)
  t.match(await plan(), { plan: 'always_allowed', reasons: ['policy_allow', 'jit_grant'] })
  const carolPlan = async () =>
    (await app.inject({ method: 'POST', url: '/plan', headers: CALLER.headers, payload: { subject: carol, action: 'update', resource: { type: 'documents' }, context: trustedContext(clock.now()) } })).json()
  t.match(await carolPlan(), { plan: 'conditional', filter: { op: 'eq', field: 'resource.attributes.owner', value: 'carol' } })
  const permission = await app.inject({ method: 'POST', url: '/admin/grants', headers: CALLER.headers, payload: { subject: 'carol', durationSeconds: 600, justification: 'cover', permission: { resourceType: 'documents', action: 'update' } } })
  t.equal(permission.statusCode, 201)
  t.match(await carolPlan(), { plan: 'always_allowed' }, 'a granted permission allows what no rule decides: every document')
  t.equal((await grant({ permission: { resourceType: 'users', action: 'read' }, resource: { type: 'users', id: 'u-7' } })).statusCode, 201)
  const scoped = await plan()
  t.match(scoped, { plan: 'unsupported', unsupported: { reason: /single resource users\/u-7/ } })
})

t.test('a rule no filter can express makes the answer name it, never approximate it', async (t) => {
  const dir = await policyCopy(t)
  await appendFile(join(dir, 'policy.csv'), '\np, employee, *, reports, read, r.obj.attributes.meta.level > 2, allow\n')
  const app = await build(t, { env: { PDP_POLICY_DIR: dir } })
  const res = await app.inject({ method: 'POST', url: '/plan', payload: { subject: carol, action: 'read', resource: { type: 'reports' } } })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { plan: 'unsupported', reasons: ['policy_error'], unsupported: { rule: /^policy\.csv:\d+$/, reason: /resource\.attributes\.meta/ } })
  const rule = Number(/:(\d+)$/.exec(res.json().unsupported.rule)![1])
  const { readFile } = await import('node:fs/promises')
  t.match((await readFile(join(dir, 'policy.csv'), 'utf8')).split('\n')[rule - 1], /meta\.level/)
})

t.test('POST /plan rejects bad input with a 400 naming the field, and needs the caller /decide needs', async (t) => {
  const app = await build(t)
  const valid = { subject: carol, action: 'read', resource: { type: 'documents' } }
  const cases: { name: string; body: unknown; field: string }[] = [
    { name: 'missing subject', body: { action: 'read', resource: { type: 'documents' } }, field: '/subject' },
    { name: 'missing action', body: { subject: carol, resource: { type: 'documents' } }, field: '/action' },
    { name: 'missing resource type', body: { ...valid, resource: {} }, field: '/resource/type' },
    { name: 'a resource id', body: { ...valid, resource: { type: 'documents', id: 'd1' } }, field: '/resource/id' },
    { name: 'explain', body: { ...valid, explain: true }, field: '/explain' },
    { name: 'subject and token', body: { ...valid, token: 'x.y.z' }, field: '/token' },
    { name: 'ip is not an address', body: { ...valid, context: { ip: 'nowhere' } }, field: '/context/ip' },
    { name: 'prototype key in attributes', body: { ...valid, subject: { id: 'a', attributes: { prototype: 1 } } }, field: '/subject/attributes/prototype' },
    { name: 'body is an array', body: [valid], field: '/' },
  ]
  for (const c of cases) {
    const res = await app.inject({ method: 'POST', url: '/plan', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(c.body) })
    t.equal(res.statusCode, 400, `${c.name}: status`)
    t.match(res.json(), { code: 'PDP_ERR_VALIDATION', field: c.field }, c.name)
  }
  const malformed = await app.inject({ method: 'POST', url: '/plan', headers: { 'content-type': 'application/json' }, payload: '{"subject":' })
  t.equal(malformed.statusCode, 400)
  const unknown = await app.inject({ method: 'POST', url: '/plan', payload: { ...valid, colour: 'blue' } })
  t.match(unknown.json(), { statusCode: 400, code: 'PDP_ERR_VALIDATION', field: '/colour' }, 'an unknown field is named, not ignored')
  let nested: unknown = 'leaf'
  for (let i = 0; i < 20; i++) nested = { n: nested }
  const deep = await app.inject({ method: 'POST', url: '/plan', payload: { ...valid, subject: { id: 'a', attributes: { deep: nested } } } })
  t.equal(deep.statusCode, 400, 'attributes nested too deep are a 400, as on /decide')
  const hostile = `{"subject":{"id":"a","attributes":{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}},"action":"read","resource":{"type":"documents"}}`
  t.equal((await app.inject({ method: 'POST', url: '/plan', headers: { 'content-type': 'application/json' }, payload: hostile })).statusCode, 400, 'hostile nesting is a 400')
  const text = await app.inject({ method: 'POST', url: '/plan', headers: { 'content-type': 'text/plain' }, payload: 'hello' })
  t.match(text.json(), { statusCode: 415, code: 'PDP_ERR_UNSUPPORTED_MEDIA_TYPE' })
  const small = await build(t, { env: { PDP_BODY_LIMIT: '2048' } })
  const big = await small.inject({ method: 'POST', url: '/plan', payload: { ...valid, subject: { id: 'a', attributes: { blob: 'x'.repeat(4096) } } } })
  t.match(big.json(), { statusCode: 413, code: 'PDP_ERR_BODY_TOO_LARGE' })
  t.equal((await app.inject({ method: 'POST', url: '/plan', payload: valid })).statusCode, 200, 'the service still answers')

  const guarded = await build(t, { env: CALLER.env })
  const anonymous = await guarded.inject({ method: 'POST', url: '/plan', payload: valid })
  t.equal(anonymous.statusCode, 401)
  t.equal((await guarded.inject({ method: 'POST', url: '/plan', headers: CALLER.headers, payload: valid })).statusCode, 200)
})
