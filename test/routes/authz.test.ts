import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { join } from 'node:path'
import { auditCapture, build, manualClock } from '../helpers/build.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

const issuer = await createIssuer()
const jwksFile = await issuer.jwksFile()
const env = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: jwksFile }
const clock = manualClock()
const nowS = () => Math.floor(clock.now() / 1000)
const token = (sub: string, amr: string[], extra: Record<string, unknown> = {}) =>
  issuer.sign({ sub, tenant: 'acme', auth_time: nowS() - 60, amr, ...extra }, { nowMs: clock.now() })

async function app(t: Parameters<typeof build>[0], extraEnv: Record<string, string> = {}, capture?: ReturnType<typeof auditCapture>): Promise<FastifyInstance> {
  return build(t, { env: { ...env, ...extraEnv }, now: clock.now, ...(capture ? { auditStream: capture.stream } : {}) })
}

t.test('NGINX auth_request: allow answers 200 with the subject for the upstream', async (t) => {
  const capture = auditCapture()
  // The gateway sets the device header from the mTLS client certificate, and the PDP is told so.
  const pdp = await app(t, { PDP_DEVICE_HEADER_TRUSTED: 'true' }, capture)
  const bearer = await token('alice', ['pwd', 'otp'])
  const res = await pdp.inject({
    method: 'GET',
    url: '/authz',
    headers: {
      authorization: `Bearer ${bearer}`,
      'x-original-uri': '/api/documents/d1?download=1',
      'x-original-method': 'GET',
      'x-forwarded-for': '81.2.69.142',
      'x-real-ip': '81.2.69.142',
      'x-request-id': 'nginx-req-1',
      'x-device-id': 'alice-laptop',
      'content-length': '',
      'user-agent': 'Mozilla/5.0',
    },
  })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-pdp-subject'], 'alice')
  t.equal(res.headers['x-pdp-tenant'], 'acme')
  t.match(res.headers['x-pdp-decision-id'], /^[0-9a-f-]{36}$/)
  t.equal(res.headers['x-request-id'], 'nginx-req-1')
  const line = capture.lines.find((l) => l.type === 'decision')!
  t.match(line, { source: 'forward_auth', subject: 'alice', action: 'read', resource: { type: 'documents', id: 'd1' }, request_id: 'nginx-req-1' })
  t.match(line.input, { context: { ip: '81.2.69.142', device: { id: 'alice-laptop' }, userAgent: 'Mozilla/5.0' } })
  t.notMatch(JSON.stringify(capture.lines), bearer.slice(0, 30), 'the token is not in the decision log')
})

t.test('Traefik ForwardAuth: a step-up answers 401 with the exact RFC 9470 challenge', async (t) => {
  const pdp = await app(t)
  const res = await pdp.inject({
    method: 'GET',
    url: '/authz/forward',
    headers: {
      authorization: `Bearer ${await token('alice', ['pwd'])}`,
      'x-forwarded-method': 'DELETE',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.example.com',
      'x-forwarded-uri': '/api/users/bob',
      'x-forwarded-for': '81.2.69.142',
      'x-device-id': 'new-phone',
    },
  })
  t.equal(res.statusCode, 401)
  t.equal(
    res.headers['www-authenticate'],
    'Bearer error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required", acr_values="aal2", max_age="3600"',
  )
  t.equal(res.headers['x-pdp-reason'], 'step_up_required')
  t.match(res.json(), { decision: 'step_up', stepUp: { level: 'low', methods: ['totp'] } })
})

t.test('Envoy ext_authz: the original method and path arrive under the prefix; a deny is 403', async (t) => {
  const pdp = await app(t)
  const res = await pdp.inject({
    method: 'DELETE',
    url: '/authz/envoy/api/documents/d9?force=1',
    headers: {
      authorization: `Bearer ${await token('carol', ['pwd', 'otp'])}`,
      'x-forwarded-for': '81.2.69.142',
      'x-request-id': 'envoy-1',
      'x-envoy-expected-rq-timeout-ms': '250',
      'content-length': '0',
    },
  })
  t.equal(res.statusCode, 403)
  t.equal(res.headers['x-pdp-reason'], 'no_matching_policy')
  t.match(res.json(), { decision: 'deny', reasons: ['no_matching_policy'] })

  const allowed = await pdp.inject({
    method: 'GET',
    url: '/authz/envoy/api/documents/d9',
    headers: { authorization: `Bearer ${await token('alice', ['pwd', 'otp'])}`, 'x-forwarded-for': '81.2.69.142' },
  })
  t.equal(allowed.statusCode, 200)
})

t.test('bad or missing credentials are 401 invalid_token; everything odd is a 403 with a reason, never a 5xx', async (t) => {
  const pdp = await app(t)
  const ask = (headers: Record<string, string>, url = '/authz/forward', method: 'GET' | 'POST' = 'GET', payload?: string) =>
    pdp.inject({ method, url, headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/documents/d1', ...headers }, ...(payload ? { payload } : {}) })

  const missing = await ask({})
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="pdp"')
  t.equal(missing.headers['x-pdp-reason'], 'token_missing')

  const garbage = await ask({ authorization: 'Bearer not.a.jwt' })
  t.equal(garbage.statusCode, 401)
  t.equal(garbage.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="token invalid"')

  const expired = await ask({ authorization: `Bearer ${await issuer.sign({ sub: 'alice', tenant: 'acme' }, { nowMs: clock.now() - 7_200_000 })}` })
  t.equal(expired.statusCode, 401)
  t.match(expired.headers['www-authenticate'], /error="invalid_token", error_description="token expired"/)

  const good = `Bearer ${await token('alice', ['pwd', 'otp'])}`
  const cases: [string, Record<string, string>, string, string?, string?][] = [
    ['unmapped route', { authorization: good, 'x-forwarded-uri': '/not/mapped' }, 'unmapped_route'],
    ['an empty original URI', { authorization: good, 'x-forwarded-uri': '' }, 'bad_request'],
    ['dot segments', { authorization: good, 'x-forwarded-uri': '/api/documents/../users/bob' }, 'bad_request'],
    ['bad escape', { authorization: good, 'x-forwarded-uri': '/api/documents/%zz' }, 'bad_request'],
    ['unknown method', { authorization: good, 'x-forwarded-method': 'BREW' }, 'bad_request'],
  ]
  for (const [name, headers, reason, method, payload] of cases) {
    const res = await ask(headers, '/authz/forward', (method as 'POST') ?? 'GET', payload)
    t.equal(res.statusCode, reason === 'bad_request' || reason === 'unmapped_route' ? 403 : 401, `${name}: status`)
    t.equal(res.headers['x-pdp-reason'], reason, `${name}: reason`)
  }
  const body = await ask({ authorization: good, 'content-type': 'application/json' }, '/authz/forward', 'POST', '{"broken')
  t.equal(body.statusCode, 200, 'a body is never read, so a broken one changes nothing')

  const noUri = await pdp.inject({ method: 'GET', url: '/authz/forward', headers: { authorization: good } })
  t.equal(noUri.statusCode, 403)
  t.equal(noUri.headers['x-pdp-reason'], 'bad_request', 'no forwarded URI at all')

  const original = pdp.pdp.decide
  pdp.pdp.decide = async () => {
    throw new Error('boom')
  }
  const failed = await ask({ authorization: good })
  pdp.pdp.decide = original
  t.equal(failed.statusCode, 403)
  t.equal(failed.headers['x-pdp-reason'], 'internal_error')
})

t.test('a store outage is a 403 with its reason', async (t) => {
  const pdp = await app(t, { REDIS_URL: 'redis://127.0.0.1:1', PDP_STORE_TIMEOUT_MS: '20' })
  const res = await pdp.inject({
    method: 'GET',
    url: '/authz/forward',
    headers: { authorization: `Bearer ${await token('alice', ['otp'])}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/documents/d1' },
  })
  t.equal(res.statusCode, 403)
  t.equal(res.headers['x-pdp-reason'], 'store_unavailable')
})

t.test('X-Forwarded-For is believed only from trusted proxies', async (t) => {
  const capture = auditCapture()
  const pdp = await app(t, { PDP_TRUSTED_PROXIES: '10.0.0.0/8' }, capture)
  await pdp.inject({
    method: 'GET',
    url: '/authz/forward',
    headers: { authorization: `Bearer ${await token('alice', ['otp'])}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/documents/d1', 'x-forwarded-for': '81.2.69.142' },
  })
  const line = capture.lines.find((l) => l.type === 'decision')!
  t.match(line.input, { context: { ip: '127.0.0.1' } }, 'the spoofed address from an untrusted peer is ignored')
})

t.test('an unmapped route may be allowed by routes.yaml', async (t) => {
  const { policyCopy } = await import('../helpers/build.js')
  const { writeFile } = await import('node:fs/promises')
  const dir = await policyCopy(t)
  await writeFile(join(dir, 'routes.yaml'), 'unmapped: allow\nroutes: []\n')
  const pdp = await app(t, { PDP_POLICY_DIR: dir })
  const res = await pdp.inject({ method: 'GET', url: '/authz', headers: { 'x-original-uri': '/public/logo.png', 'x-original-method': 'GET' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-pdp-reason'], 'unmapped_route')
})
