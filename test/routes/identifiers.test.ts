import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, manualClock } from '../helpers/build.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

/**
 * Issue 14: ids that cannot become store keys are a 400 naming the field, on every route; prototype
 * names are ordinary ids; tokens whose claims could not become keys are a deny, never a 500.
 */

const ADMIN = 'identifiers-admin-token-0123456789abcdef'
const clock = manualClock()
const nowSec = Math.floor(clock.now() / 1000)
const issuer = await createIssuer()
const env = { PDP_ADMIN_TOKEN: ADMIN, PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() }

/** A located address (geoip's test range in the UK), so that the location signal looks the subject and tenant up. */
const LOCATED = '81.2.69.160'
const decideBody = { subject: { id: 'carol', tenant: 'acme' }, action: 'read', resource: { type: 'documents', attributes: { owner: 'carol' } } }

const send = (app: FastifyInstance, method: 'POST' | 'GET' | 'DELETE', url: string, body?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  })

/** A value as test output may show it: TAP readers take U+0085 and U+2028 for line breaks. */
const shown = (value: unknown) => JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

/** Strings no store key may be made of: unpaired surrogates (either half) and control characters. */
const UNUSABLE = ['\ud800', 'a\udfffb', '\udc00\ud800', 'a\u0000b', 'tab\there', 'line\nbreak', '\u007f', '\u0085', 'x\u2028y']

t.test('an id that cannot become a store key is a 400 naming the field, on every route', async (t) => {
  const app = await build(t, { env, now: clock.now })
  const withContext = (context: unknown) => ({ ...decideBody, context })
  const cases: { url: string; field: string; body: (bad: string) => unknown }[] = [
    { url: '/decide', field: '/subject/id', body: (bad) => ({ ...decideBody, subject: { id: bad } }) },
    { url: '/decide', field: '/subject/tenant', body: (bad) => ({ ...decideBody, subject: { id: 'carol', tenant: bad } }) },
    { url: '/decide', field: '/subject/roles/0', body: (bad) => ({ ...decideBody, subject: { id: 'carol', roles: [bad] } }) },
    { url: '/decide', field: '/context/device/id', body: (bad) => withContext({ device: { id: bad } }) },
    { url: '/decide', field: '/context/session/id', body: (bad) => withContext({ session: { id: bad } }) },
    { url: '/decide', field: '/resource/type', body: (bad) => ({ ...decideBody, resource: { type: bad } }) },
    { url: '/decide', field: '/resource/id', body: (bad) => ({ ...decideBody, resource: { type: 'documents', id: bad } }) },
    { url: '/decide', field: '/action', body: (bad) => ({ ...decideBody, action: bad }) },
    { url: '/decide/batch', field: '/subject/id', body: (bad) => ({ subject: { id: bad }, items: [{ action: 'read', resource: { type: 'documents' } }] }) },
    { url: '/decide/batch', field: '/context/device/id', body: (bad) => ({ subject: { id: 'carol' }, context: { device: { id: bad } }, items: [{ action: 'read', resource: { type: 'documents' } }] }) },
    { url: '/decide/batch', field: '/context/session/id', body: (bad) => ({ subject: { id: 'carol' }, context: { session: { id: bad } }, items: [{ action: 'read', resource: { type: 'documents' } }] }) },
    { url: '/decide/batch', field: '/items/0/resource/type', body: (bad) => ({ subject: { id: 'carol' }, items: [{ action: 'read', resource: { type: bad } }] }) },
    { url: '/admin/revocations', field: '/jti', body: (bad) => ({ jti: bad }) },
    { url: '/admin/revocations', field: '/sessionId', body: (bad) => ({ sessionId: bad }) },
    { url: '/admin/revocations', field: '/subject', body: (bad) => ({ subject: bad }) },
    { url: '/admin/grants', field: '/subject', body: (bad) => ({ subject: bad, role: 'employee', durationSeconds: 60, justification: 'x' }) },
    { url: '/admin/grants', field: '/tenant', body: (bad) => ({ subject: 'carol', role: 'employee', tenant: bad, durationSeconds: 60, justification: 'x' }) },
    { url: '/events', field: '/subject', body: (bad) => ({ type: 'login_failure', subject: bad }) },
    { url: '/events', field: '/tenant', body: (bad) => ({ type: 'login_failure', subject: 'carol', tenant: bad }) },
    { url: '/events', field: '/deviceId', body: (bad) => ({ type: 'login_success', subject: 'carol', deviceId: bad }) },
    { url: '/events', field: '/sessionId', body: (bad) => ({ type: 'login_success', subject: 'carol', sessionId: bad }) },
  ]
  for (const c of cases) {
    for (const bad of UNUSABLE) {
      const res = await send(app, 'POST', c.url, c.body(bad))
      const what = `${c.url} ${c.field} = ${shown(bad)}`
      t.equal(res.statusCode, 400, `${what}: status`)
      t.equal(res.json().code, 'PDP_ERR_VALIDATION', `${what}: code`)
      t.equal(res.json().field, c.field, `${what}: field`)
    }
  }
  t.equal((app.store as unknown as { size: number }).size, 0, 'nothing reached the store')
})

t.test('an unpaired surrogate anywhere in a body is a 400 naming where it is', async (t) => {
  const app = await build(t, { env, now: clock.now })
  const res = await send(app, 'POST', '/decide', { ...decideBody, resource: { type: 'documents', attributes: { note: 'x\ud800' } } })
  t.equal(res.statusCode, 400)
  t.same(res.json(), { statusCode: 400, code: 'PDP_ERR_VALIDATION', error: 'Bad Request', message: '/resource/attributes/note is not well-formed Unicode (an unpaired surrogate)', field: '/resource/attributes/note' })
  const key = await send(app, 'POST', '/decide', { ...decideBody, subject: { id: 'carol', attributes: { ['k\udc00']: 1 } } })
  t.equal(key.statusCode, 400)
  t.equal(key.json().field, '/subject/attributes/k\ufffd', 'the pointer is well-formed text')
})

t.test('a control character in a path id is a 400, and a path that is not UTF-8 is a catalogue 400', async (t) => {
  const app = await build(t, { env, now: clock.now })
  for (const [method, url, field] of [
    ['GET', '/admin/subjects/a%00b/sessions', '/id'],
    ['DELETE', '/admin/subjects/a%0Ab/sessions', '/id'],
    ['DELETE', '/admin/subjects/carol/sessions/%1B', '/sid'],
    ['GET', '/admin/grants/%7F', '/id'],
    ['DELETE', '/admin/grants/carol/%00', '/grantId'],
    ['GET', '/admin/subjects/%C2%85/restrictions', '/id'],
  ] as const) {
    const res = await send(app, method, url)
    t.equal(res.statusCode, 400, `${method} ${url}`)
    t.equal(res.json().code, 'PDP_ERR_VALIDATION', `${method} ${url}: code`)
    t.equal(res.json().field, field, `${method} ${url}: field`)
  }
  const undecodable = await send(app, 'GET', '/admin/subjects/%ED%A0%80/sessions')
  t.equal(undecodable.statusCode, 400)
  t.equal(undecodable.json().code, 'PDP_ERR_VALIDATION')
  t.equal((app.store as unknown as { size: number }).size, 0, 'nothing reached the store')
})

t.test('prototype names are ordinary tenants and subjects', async (t) => {
  const app = await build(t, { env, now: clock.now })
  const cases = [
    { subject: { id: 'carol', tenant: '__proto__' } },
    { subject: { id: 'carol', tenant: 'constructor' } },
    { subject: { id: 'carol', tenant: 'toString' } },
    { subject: { id: 'constructor', tenant: 'acme' } },
    { subject: { id: 'hasOwnProperty', tenant: 'acme' } },
    { subject: { id: 'constructor', tenant: 'constructor', roles: ['employee'] } },
  ]
  for (const c of cases) {
    for (const url of ['/decide', '/decide/batch']) {
      const owner = c.subject.id
      const resource = { type: 'documents', attributes: { owner } }
      const context = { ip: LOCATED, device: { id: 'hasOwnProperty' }, session: { id: 'toString', authTime: nowSec - 60, amr: ['pwd', 'otp'] } }
      const body = url === '/decide' ? { ...c, action: 'read', resource, context } : { ...c, context, items: [{ action: 'read', resource }, { action: 'toString', resource: { type: '__proto__' } }] }
      const res = await send(app, 'POST', url, body)
      const what = `${url} ${shown(c.subject)}`
      t.equal(res.statusCode, 200, `${what}: status`)
      const first = url === '/decide' ? res.json() : res.json().decisions[0]
      t.not(first.reasons[0], 'country_restricted', `${what}: no allowed-country list applies`)
      // The employee role (asserted or absent) decides, not some property of Object.prototype.
      t.equal(first.decision === 'deny', !c.subject.roles, `${what}: ${JSON.stringify(first.reasons)}`)
    }
  }
  // The same names through the control plane: state is kept and read back under them.
  for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    const revoked = await send(app, 'POST', '/admin/revocations', { subject: name })
    t.equal(revoked.statusCode, 201, `revoke ${name}`)
    const grant = await send(app, 'POST', '/admin/grants', { subject: name, role: 'employee', tenant: name, durationSeconds: 60, justification: 'test' })
    t.equal(grant.statusCode, 201, `grant to ${name}`)
    const listed = await send(app, 'GET', `/admin/grants/${name}`)
    t.equal(listed.json().grants.length, 1, `grants of ${name}`)
    for (const id of ['constructor', '__proto__', 'toString']) {
      const missing = await send(app, 'DELETE', `/admin/grants/${name}/${id}`)
      t.equal(missing.statusCode, 404, `no grant ${id} of ${name}`)
    }
    const event = await send(app, 'POST', '/events', { type: 'login_failure', subject: name, tenant: name, deviceId: 'constructor', sessionId: '__proto__', ip: LOCATED })
    t.equal(event.statusCode, 200, `event for ${name}`)
    const restrictions = await send(app, 'GET', `/admin/subjects/${name}/restrictions`)
    t.same(restrictions.json(), { subject: name }, `restrictions of ${name}`)
  }
})

t.test('a token whose claims cannot become store keys is denied as token_invalid, never a 500', async (t) => {
  const app = await build(t, { env, now: clock.now })
  const claims = [
    { sub: '\ud800' },
    { sub: 'a\u0000b' },
    { sub: 'carol', tenant: '\udfff' },
    { sub: 'carol', tenant: 'acme\n' },
    { sub: 'carol', roles: ['employee', '\ud834'] },
    { sub: 'carol', jti: 'j\ud800' },
    { sub: 'carol', sid: '\udc00' },
  ]
  for (const c of claims) {
    const token = await issuer.sign(c, { nowMs: clock.now() })
    const what = shown(c)
    for (const url of ['/decide', '/decide/batch']) {
      const body = url === '/decide' ? { token, action: 'read', resource: { type: 'documents' }, context: { ip: LOCATED } } : { token, items: [{ action: 'read', resource: { type: 'documents' } }] }
      const res = await send(app, 'POST', url, body)
      t.equal(res.statusCode, 200, `${url} ${what}: status`)
      const decision = url === '/decide' ? res.json() : res.json().decisions[0]
      t.equal(decision.decision, 'deny', `${url} ${what}: deny`)
      t.same(decision.reasons, ['token_invalid'], `${url} ${what}: reason`)
    }
    const forward = await app.inject({
      method: 'GET',
      url: '/authz',
      headers: { authorization: `Bearer ${token}`, 'x-original-uri': '/api/documents/d1', 'x-original-method': 'GET' },
    })
    t.equal(forward.statusCode, 401, `forward-auth ${what}: status`)
    t.equal(forward.headers['x-pdp-reason'], 'token_invalid', `forward-auth ${what}: reason`)
  }
})
