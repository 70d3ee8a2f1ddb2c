import t from 'tap'
import { build } from '../helpers/build.js'

const valid = { subject: { id: 'carol', tenant: 'acme' }, action: 'read', resource: { type: 'documents', attributes: { owner: 'carol' } } }

const post = (app: Awaited<ReturnType<typeof build>>, payload: string | object, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/decide',
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  })

t.test('POST /decide rejects bad input with a 400 naming the field', async (t) => {
  const app = await build(t)
  const cases: { name: string; body: unknown; field: string }[] = [
    { name: 'missing subject', body: { action: 'read', resource: { type: 'documents' } }, field: '/subject' },
    { name: 'missing action', body: { subject: { id: 'a' }, resource: { type: 'documents' } }, field: '/action' },
    { name: 'missing resource', body: { subject: { id: 'a' }, action: 'read' }, field: '/resource' },
    { name: 'missing resource type', body: { ...valid, resource: {} }, field: '/resource/type' },
    { name: 'empty subject id', body: { ...valid, subject: { id: '' } }, field: '/subject/id' },
    { name: 'empty action', body: { ...valid, action: '' }, field: '/action' },
    { name: 'subject id is a number', body: { ...valid, subject: { id: 42 } }, field: '/subject/id' },
    { name: 'roles is a string', body: { ...valid, subject: { id: 'a', roles: 'admin' } }, field: '/subject/roles' },
    { name: 'role is an object', body: { ...valid, subject: { id: 'a', roles: [{}] } }, field: '/subject/roles/0' },
    { name: 'attributes is an array', body: { ...valid, subject: { id: 'a', attributes: [1] } }, field: '/subject/attributes' },
    { name: 'explain is a string', body: { ...valid, explain: 'yes' }, field: '/explain' },
    { name: 'unknown top-level field', body: { ...valid, subjct: { id: 'a' } }, field: '/subjct' },
    { name: 'unknown subject field', body: { ...valid, subject: { id: 'a', role: 'admin' } }, field: '/subject/role' },
    { name: 'sensitivity not in the list', body: { ...valid, context: { sensitivity: 'extreme' } }, field: '/context/sensitivity' },
    { name: 'authTime is a string', body: { ...valid, context: { session: { authTime: 'yesterday' } } }, field: '/context/session/authTime' },
    { name: 'authTime is negative', body: { ...valid, context: { session: { authTime: -1 } } }, field: '/context/session/authTime' },
    { name: 'device without id', body: { ...valid, context: { device: { managed: true } } }, field: '/context/device/id' },
    { name: 'ip is not an address', body: { ...valid, context: { ip: '999.1.1.1' } }, field: '/context/ip' },
    { name: 'body is an array', body: [valid], field: '/' },
    { name: 'body is a string', body: '"decide"', field: '/' },
    { name: 'body is a number', body: 42, field: '/' },
    { name: 'body is null', body: null, field: '/' },
    { name: 'constructor key in attributes', body: { ...valid, resource: { type: 'documents', attributes: { constructor: { x: 1 } } } }, field: '/resource/attributes/constructor' },
    { name: 'prototype key in attributes', body: { ...valid, subject: { id: 'a', attributes: { prototype: 1 } } }, field: '/subject/attributes/prototype' },
    { name: 'too many roles', body: { ...valid, subject: { id: 'a', roles: Array.from({ length: 65 }, (_, i) => `r${i}`) } }, field: '/subject/roles' },
    { name: 'over-long subject id', body: { ...valid, subject: { id: 'x'.repeat(257) } }, field: '/subject/id' },
  ]
  for (const c of cases) {
    const res = await post(app, c.body as object)
    t.equal(res.statusCode, 400, `${c.name}: status`)
    const body = res.json()
    t.equal(body.code, 'PDP_ERR_VALIDATION', `${c.name}: code`)
    t.equal(body.field, c.field, `${c.name}: field`)
    t.match(body.message, c.field === '/' ? /./ : c.field, `${c.name}: message names the field`)
  }
})

t.test('malformed JSON, __proto__ and empty bodies are 400', async (t) => {
  const app = await build(t)
  for (const [name, payload] of [
    ['truncated', '{"subject": {"id": "a"'],
    ['not JSON', 'subject=a'],
    ['trailing garbage', JSON.stringify(valid) + 'x'],
    ['__proto__ key', '{"subject":{"id":"a","attributes":{"__proto__":{"admin":true}}},"action":"read","resource":{"type":"documents"}}'],
    ['constructor.prototype', '{"subject":{"id":"a"},"constructor":{"prototype":{"admin":true}},"action":"read","resource":{"type":"documents"}}'],
    ['empty', ''],
  ] as const) {
    const res = await post(app, payload)
    t.equal(res.statusCode, 400, `${name}: status`)
    t.match(res.json().code, /^PDP_ERR_(MALFORMED_JSON|VALIDATION)$/, `${name}: code`)
  }
  t.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype was polluted')
})

t.test('deeply nested attributes are bounded and never crash', async (t) => {
  const app = await build(t)
  let nested: unknown = 'leaf'
  for (let i = 0; i < 20; i++) nested = { n: nested }
  const res = await post(app, { ...valid, resource: { type: 'documents', attributes: { deep: nested } } })
  t.equal(res.statusCode, 400)
  t.match(res.json().message, /nested deeper than/)

  // Close to the body limit: a hundred thousand nested arrays.
  const hostile = `{"subject":{"id":"a","attributes":{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}},"action":"read","resource":{"type":"documents"}}`
  const res2 = await post(app, hostile)
  t.equal(res2.statusCode, 400, 'hostile nesting is a 400')

  const wide = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, Array.from({ length: 200 }, () => i)]))
  const res3 = await post(app, { ...valid, subject: { id: 'a', attributes: wide } })
  t.equal(res3.statusCode, 400, 'too many values in one body')
  t.match(res3.json().message, /more than/)

  const ok = await post(app, valid)
  t.equal(ok.statusCode, 200, 'the service still answers')
})

t.test('bodies over the limit are 413; other media types are 415', async (t) => {
  const app = await build(t, { env: { PDP_BODY_LIMIT: '2048' } })
  const big = { ...valid, resource: { type: 'documents', attributes: { blob: 'x'.repeat(4096) } } }
  const res = await post(app, big)
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'PDP_ERR_BODY_TOO_LARGE')

  const text = await app.inject({ method: 'POST', url: '/decide', headers: { 'content-type': 'text/plain' }, payload: 'hello' })
  t.equal(text.statusCode, 415)
  t.equal(text.json().code, 'PDP_ERR_UNSUPPORTED_MEDIA_TYPE')
})

t.test('unknown routes are a JSON 404', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/nope?token=secret' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'PDP_ERR_NOT_FOUND')
  t.notMatch(res.body, /secret/, 'the query string is not echoed')
})

t.test('X-Request-Id is honoured and echoed; a bad one is replaced', async (t) => {
  const app = await build(t)
  const res = await post(app, valid, { 'x-request-id': 'gw-123' })
  t.equal(res.headers['x-request-id'], 'gw-123')
  const bad = await post(app, valid, { 'x-request-id': 'has spaces and\nnewlines' })
  t.match(bad.headers['x-request-id'], /^[0-9a-f-]{36}$/)
})

t.test('token and subject exclude each other; a token without a configured issuer is denied', async (t) => {
  const app = await build(t)
  const both = await post(app, { ...valid, token: 'a.b.c' })
  t.equal(both.statusCode, 400)
  t.match(both.json(), { code: 'PDP_ERR_VALIDATION', field: '/token' })

  const { subject: _subject, ...noSubject } = valid
  const neither = await post(app, noSubject)
  t.equal(neither.statusCode, 400)
  t.match(neither.json(), { field: '/subject' })

  const tokenOnly = await post(app, { ...noSubject, token: 'eyJhbGciOiJub25lIn0.e30.' })
  t.equal(tokenOnly.statusCode, 200)
  t.match(tokenOnly.json(), { decision: 'deny', reasons: ['token_invalid'] })
})
