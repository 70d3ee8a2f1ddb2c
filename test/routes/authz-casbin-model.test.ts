import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { build, manualClock, policyCopy } from '../helpers/build.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

/*
 * A Casbin user's own keyMatch model behind forward auth: request.yaml gives r.obj the original request's path and
 * r.act its method, so policy lines are written in paths, as Casbin's keyMatch examples are.
 */

const issuer = await createIssuer()
const env = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() }
const clock = manualClock()
const token = (sub: string) => issuer.sign({ sub, tenant: 'acme', auth_time: Math.floor(clock.now() / 1000) - 60, amr: ['pwd', 'otp'] }, { nowMs: clock.now() })

const MODEL = `[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && keyMatch2(r.obj, p.obj) && r.act == p.act
`
const POLICY = `p, reader, /api/documents/:id, GET
p, alice, /api/documents/*, DELETE
g, bob, reader
`

t.test('forward auth with a keyMatch2 model over the original path and method', async (t) => {
  const dir = await policyCopy(t)
  await writeFile(join(dir, 'model.conf'), MODEL)
  await writeFile(join(dir, 'policy.csv'), POLICY)
  // sub is guessed (subject.id); obj and act are the original request's.
  await writeFile(join(dir, 'request.yaml'), 'obj: http.path\nact: http.method\n')
  await writeFile(join(dir, 'routes.yaml'), 'unmapped: deny\nroutes:\n  - { path: /api/*, resource: { type: api }, action: call }\n')
  const pdp = await build(t, { env: { ...env, PDP_POLICY_DIR: dir }, now: clock.now })
  t.equal(pdp.policy.current.evaluator.engine, 'indexed', 'the indexed evaluator answers')

  const cases: [string, string, string, string, number][] = [
    ['nginx', 'bob', 'GET', '/api/documents/d1', 200],
    ['nginx', 'bob', 'GET', '/api/documents/d1/?download=1', 200],
    ['nginx', 'bob', 'GET', '/api/documents/a%20b', 200],
    ['nginx', 'bob', 'GET', '/api/documents/d1/versions', 403],
    ['nginx', 'bob', 'DELETE', '/api/documents/d1', 403],
    ['nginx', 'bob', 'GET', '/api/users/u1', 403],
    ['forward', 'alice', 'DELETE', '/api/documents/d1/versions/2', 200],
    ['forward', 'alice', 'GET', '/api/documents/d1', 403],
    ['forward', 'bob', 'GET', '/api/documents/d1', 200],
    // an encoded "/" is refused before any policy sees the path
    ['forward', 'bob', 'GET', '/api/documents/a%2Fb', 403],
  ]
  for (const [dialect, subject, method, uri, status] of cases) {
    const headers =
      dialect === 'nginx' ? { 'x-original-method': method, 'x-original-uri': uri } : { 'x-forwarded-method': method, 'x-forwarded-uri': uri, 'x-forwarded-host': 'api.example.com' }
    const res = await pdp.inject({ method: 'GET', url: dialect === 'nginx' ? '/authz' : '/authz/forward', headers: { ...headers, authorization: `Bearer ${await token(subject)}` } })
    t.equal(res.statusCode, status, `${dialect}: ${subject} ${method} ${uri}`)
    if (status === 403) t.match(res.headers['x-pdp-reason'], /^(no_matching_policy|bad_request)$/, 'denied by the policy or as an unsafe path')
  }
})

t.test('the original path is empty for /decide, which names resources instead', async (t) => {
  for (const [obj, decision] of [['http.path', 'deny'], ['resource.id', 'allow']] as const) {
    const dir = await policyCopy(t)
    await writeFile(join(dir, 'model.conf'), MODEL)
    await writeFile(join(dir, 'policy.csv'), 'p, bob, /api/*, GET\n')
    await writeFile(join(dir, 'request.yaml'), `obj: ${obj}\nact: action\n`)
    const pdp = await build(t, { env: { ...env, PDP_POLICY_DIR: dir }, now: clock.now })
    const res = await pdp.inject({ method: 'POST', url: '/decide', payload: { token: await token('bob'), action: 'GET', resource: { type: 'api', id: '/api/x' } } })
    // keyMatch2("", "/api/*") is false: /decide carries no original request, whatever its resource id says.
    t.equal(res.json().decision, decision, `obj: ${obj}`)
  }
})
