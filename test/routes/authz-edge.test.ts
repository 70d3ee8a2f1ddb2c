import t from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { appendFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { auditCapture, build, manualClock, policyCopy } from '../helpers/build.js'
import { livePdp } from '../helpers/live-pdp.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

// Each test here is one way a client steered a forward-auth verdict, or a gateway got an answer it turns into a 5xx.

const issuer = await createIssuer()
const env = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() }
const clock = manualClock()
const token = async (sub: string, amr = ['pwd', 'otp']) =>
  `Bearer ${await issuer.sign({ sub, tenant: 'acme', auth_time: Math.floor(clock.now() / 1000) - 60, amr }, { nowMs: clock.now() })}`

async function app(t: Parameters<typeof build>[0], extra: Record<string, string> = {}, capture?: ReturnType<typeof auditCapture>): Promise<FastifyInstance> {
  return build(t, { env: { ...env, ...extra }, now: clock.now, ...(capture ? { auditStream: capture.stream } : {}) })
}

t.test('NGINX /authz believes only X-Original-*: a client cannot rename its request with X-Forwarded-*', async (t) => {
  const capture = auditCapture()
  const pdp = await app(t, {}, capture)
  const carol = await token('carol')
  for (const [method, uri] of [
    ['DELETE', '/api/users/u9'],
    ['GET', '/api/system/logs/x'],
  ]) {
    const res = await pdp.inject({
      method: 'GET',
      url: '/authz',
      headers: { authorization: carol, 'x-original-method': method!, 'x-original-uri': uri!, 'x-forwarded-method': 'POST', 'x-forwarded-uri': '/api/documents' },
    })
    t.equal(res.statusCode, 403, `${method} ${uri}: the employee is denied`)
    t.equal(res.headers['x-pdp-reason'], 'no_matching_policy')
  }
  const logged = capture.lines.filter((l) => l.type === 'decision').map((l) => `${l.action} ${(l.resource as { type: string }).type}`)
  t.same(logged, ['delete users', 'read system.logs'], 'the decision log names what the upstream would have served')

  const noMethod = await pdp.inject({ method: 'GET', url: '/authz', headers: { authorization: carol, 'x-original-uri': '/api/documents' } })
  t.equal(noMethod.statusCode, 403, 'without X-Original-Method the method is unknown (NGINX subrequests are always GET)')
  t.equal(noMethod.headers['x-pdp-reason'], 'bad_request')
})

t.test('Traefik and Caddy /authz/forward believe only X-Forwarded-*', async (t) => {
  const pdp = await app(t)
  const res = await pdp.inject({
    method: 'GET',
    url: '/authz/forward',
    headers: {
      authorization: await token('carol'),
      'x-forwarded-method': 'DELETE',
      'x-forwarded-uri': '/api/users/u9',
      'x-original-method': 'POST',
      'x-original-uri': '/api/documents',
    },
  })
  t.equal(res.statusCode, 403)
  t.equal(res.headers['x-pdp-reason'], 'no_matching_policy')
  const lowercase = await pdp.inject({ method: 'GET', url: '/authz/forward', headers: { authorization: await token('carol'), 'x-forwarded-method': 'post', 'x-forwarded-uri': '/api/documents' } })
  t.equal(lowercase.headers['x-pdp-reason'], 'bad_request', 'methods are case-sensitive: "post" is not POST')
})

t.test('a method override on the request is refused, whatever the original method', async (t) => {
  const pdp = await app(t)
  const alice = await token('alice')
  for (const header of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
    const res = await pdp.inject({
      method: 'GET',
      url: '/authz',
      headers: { authorization: alice, 'x-original-method': 'GET', 'x-original-uri': '/api/documents/d1', [header]: 'DELETE' },
    })
    t.equal(res.statusCode, 403, header)
    t.equal(res.headers['x-pdp-reason'], 'bad_request', header)
  }
  const query = await pdp.inject({ method: 'GET', url: '/authz', headers: { authorization: alice, 'x-original-method': 'POST', 'x-original-uri': '/api/documents?_method=DELETE' } })
  t.equal(query.headers['x-pdp-reason'], 'bad_request', '_method in the query')
  const plain = await pdp.inject({ method: 'GET', url: '/authz', headers: { authorization: alice, 'x-original-method': 'GET', 'x-original-uri': '/api/documents/d1' } })
  t.equal(plain.statusCode, 200, 'the same request without the override is allowed')
})

t.test('encoded separators, dot segments and their variants reach neither another route nor another id', async (t) => {
  const dir = await policyCopy(t)
  await appendFile(join(dir, 'routes.yaml'), '  - { method: GET, path: /api/public/*, resource: { type: public }, action: read }\n')
  await appendFile(join(dir, 'policy.csv'), '\np, employee, *, public, read, true, allow\n')
  const pdp = await app(t, { PDP_POLICY_DIR: dir })
  const carol = await token('carol')
  const ask = (uri: string) => pdp.inject({ method: 'GET', url: '/authz', headers: { authorization: carol, 'x-original-method': 'GET', 'x-original-uri': uri } })
  t.equal((await ask('/api/public/readme')).statusCode, 200, 'the public route itself is allowed')
  for (const uri of [
    '/api/public/%2e%2e%2fusers',
    '/api/public/..%2f..%2fapi%2fusers',
    '/api/public/..;/users',
    '/api/public/..\\users',
    '/api/public/%5c..%5cusers',
    '/api/public/../users',
    '/api/public//users',
    '/api/public/%252e%252e%252fusers',
    '/API/users',
    '/api/users/u9;jsessionid=1',
  ]) {
    const res = await ask(uri)
    t.equal(res.statusCode, 403, uri)
    t.equal(res.headers['x-pdp-reason'], 'bad_request', uri)
  }
})

t.test('Envoy: the raw path is decoded once, per segment; HEAD follows GET', async (t) => {
  const capture = auditCapture()
  const pdp = await app(t, {}, capture)
  const alice = await token('alice')
  for (const url of ['/authz/envoy/api/documents%2Fd1', '/authz/envoy/api%2Fusers', '/authz/envoy/api%2575sers', '/authz/envoy/api/documents/%2e%2e%2Fusers']) {
    const res = await pdp.inject({ method: 'GET', url, headers: { authorization: alice } })
    t.equal(res.statusCode, 403, url)
    t.equal(res.headers['x-pdp-reason'], 'bad_request', url)
  }
  const encoded = await pdp.inject({ method: 'GET', url: '/authz/envoy/api/documents/q3%20plan', headers: { authorization: alice } })
  t.equal(encoded.statusCode, 200)
  const head = await pdp.inject({ method: 'HEAD', url: '/authz/envoy/api/documents/d1', headers: { authorization: alice } })
  t.equal(head.statusCode, 200, 'HEAD on a document is decided as reading it')
  const lines = capture.lines.filter((l) => l.type === 'decision')
  t.match(lines[0], { action: 'read', resource: { type: 'documents', id: 'q3 plan' } })
  t.match(lines[1], { action: 'read', resource: { type: 'documents', id: 'd1' } })
})

t.test('every forward-auth answer is 200, 401 or 403, whatever arrives', async (t) => {
  const pdp = await app(t)
  const alice = await token('alice')
  const cases: [string, InjectOptions][] = [
    ['undecodable Envoy path', { method: 'GET', url: '/authz/envoy/api/%zz', headers: { authorization: alice } }],
    ['PROPFIND through Envoy', { method: 'PROPFIND', url: '/authz/envoy/api/documents/d1', headers: { authorization: alice } }],
    ['PROPFIND to /authz', { method: 'PROPFIND', url: '/authz', headers: { authorization: alice, 'x-original-method': 'GET', 'x-original-uri': '/api/documents/d1' } }],
    ['PROPFIND as the original method', { method: 'GET', url: '/authz', headers: { authorization: alice, 'x-original-method': 'PROPFIND', 'x-original-uri': '/api/documents/d1' } }],
    ['a long Envoy path', { method: 'GET', url: `/authz/envoy/api/documents/${'a'.repeat(6000)}`, headers: { authorization: alice } }],
    ['a long original URI', { method: 'GET', url: '/authz', headers: { authorization: alice, 'x-original-method': 'GET', 'x-original-uri': `/api/documents/${'a'.repeat(6000)}` } }],
    ['a body that is not JSON', { method: 'POST', url: '/authz/forward', headers: { authorization: alice, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/documents/d1', 'content-type': 'application/json' }, payload: '{' }],
  ]
  for (const [name, request] of cases) {
    const res = await pdp.inject(request)
    t.ok([200, 401, 403].includes(res.statusCode), `${name}: ${res.statusCode}`)
    if (res.statusCode !== 200) t.ok(res.headers['x-pdp-reason'], `${name}: says why`)
  }
})

/** Sends raw bytes and reads the status line of the answer. */
function rawStatus(url: string, request: string): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname)
    let text = ''
    socket.on('data', (d) => (text += d.toString('latin1')))
    socket.on('error', reject)
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text }))
    socket.end(request)
  })
}

t.test('headers over the server limit: 403 on forward-auth endpoints, 431 elsewhere', async (t) => {
  const pdp = await livePdp(t, { env })
  const big = 'c'.repeat(20_000)
  const envoyPath = await rawStatus(pdp.url, `GET /authz/envoy/api/documents/${big} HTTP/1.1\r\nHost: pdp\r\n\r\n`)
  t.equal(envoyPath.status, 403, 'a 20 KB path')
  t.match(envoyPath.text, /x-pdp-reason: bad_request/i)
  const cookie = await rawStatus(pdp.url, `GET /authz HTTP/1.1\r\nHost: pdp\r\nX-Original-Method: GET\r\nX-Original-URI: /api/documents/d1\r\nCookie: s=${big}\r\n\r\n`)
  t.equal(cookie.status, 403, 'a 20 KB cookie')
  const decide = await rawStatus(pdp.url, `POST /decide HTTP/1.1\r\nHost: pdp\r\nCookie: s=${big}\r\n\r\n`)
  t.equal(decide.status, 431, 'the JSON API keeps its own answer')
})

t.test('one forward-auth request reads the active policy once', async (t) => {
  const capture = auditCapture()
  const pdp = await app(t, {}, capture)
  const source = pdp.policy
  const active = source.current
  let reads = 0
  Object.defineProperty(source, 'current', {
    configurable: true,
    get: () => {
      reads++
      return active
    },
  })
  t.teardown(() => delete (source as { current?: unknown }).current)
  const res = await pdp.inject({ method: 'GET', url: '/authz/forward', headers: { authorization: await token('alice'), 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/documents/d1' } })
  t.equal(res.statusCode, 200)
  t.equal(reads, 1, 'the route map and the verdict come from the same revision')
})
