import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, manualClock } from '../helpers/build.js'
import { onBothStores } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'
import { failureBucket } from '../../src/plugins/caller-auth.js'

const ADMIN = 'admin-token-for-tests-0123456789abcdef'
const auth = { authorization: `Bearer ${ADMIN}` }
const issuer = await createIssuer()
const tokenEnv = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() }

const jtiOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti

function caller(app: FastifyInstance) {
  const policy = (authorization: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url: '/admin/policy', headers: { authorization, ...headers } })
  const event = (authorization: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/events', headers: { authorization, ...headers }, payload: { type: 'login_success', subject: 'carol' } })
  const revoke = (payload: object) => app.inject({ method: 'POST', url: '/admin/revocations', headers: auth, payload })
  return { policy, event, revoke }
}

await onBothStores('a revoked control-plane JWT stops at once: by jti, by subject, by session', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, ...tokenEnv, ...env }, now: clock.now })
  const { policy, event, revoke } = caller(app)
  const sign = async (claims: Record<string, unknown>) => `Bearer ${await issuer.sign(claims, { nowMs: clock.now() })}`

  const byJti = await sign({ sub: 'ops-1', scope: 'pdp:admin' })
  t.equal((await policy(byJti)).statusCode, 200)
  t.equal((await revoke({ jti: jtiOf(byJti.slice(7)) })).statusCode, 201)
  const refused = await policy(byJti)
  t.equal(refused.statusCode, 401, 'revoked jti')
  t.match(refused.json(), { code: 'PDP_ERR_UNAUTHORIZED', message: /revoked/ })
  t.match(refused.headers['www-authenticate'], /invalid_token/)
  t.equal((await policy(await sign({ sub: 'ops-1', scope: 'pdp:admin' }))).statusCode, 200, 'another token of the same admin still works')

  const feed = await sign({ sub: 'idp-feed', scope: 'pdp:events' })
  t.equal((await event(feed)).statusCode, 200)
  await revoke({ jti: jtiOf(feed.slice(7)) })
  t.match((await event(feed)).json(), { statusCode: 401, code: 'PDP_ERR_UNAUTHORIZED' }, '/events too')

  const bySubject = await sign({ sub: 'ops-2', scope: 'pdp:admin' })
  t.equal((await policy(bySubject)).statusCode, 200)
  clock.advance(2_000)
  t.equal((await revoke({ subject: 'ops-2' })).statusCode, 201)
  t.equal((await policy(bySubject)).statusCode, 401, 'revoked subject')
  // The admin can also log themself out everywhere through the control plane.
  clock.advance(2_000)
  const again = await sign({ sub: 'ops-2', scope: 'pdp:admin' })
  t.equal((await policy(again)).statusCode, 200, 'a token issued after the subject revocation works')
  clock.advance(1_000)
  const everywhere = await app.inject({ method: 'DELETE', url: '/admin/subjects/ops-2/sessions', headers: { authorization: again } })
  t.equal(everywhere.statusCode, 200)
  t.equal((await policy(again)).statusCode, 401, 'after "log out everywhere" through /admin/subjects/:id/sessions')

  const bySession = await sign({ sub: 'ops-3', scope: 'pdp:admin', sid: 'console-7' })
  t.equal((await policy(bySession)).statusCode, 200)
  await revoke({ sessionId: 'console-7' })
  const gone = await policy(bySession)
  t.equal(gone.statusCode, 401, 'revoked session')
  t.match(gone.json(), { code: 'PDP_ERR_UNAUTHORIZED', message: /session has been revoked/ })

  t.equal((await policy(auth.authorization)).statusCode, 200, 'the static token is untouched by JWT revocations')
})

t.test('a JWT may not claim the static token\'s identity', async (t) => {
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, ...tokenEnv } })
  const res = await caller(app).policy(`Bearer ${await issuer.sign({ sub: 'admin-token', scope: 'pdp:admin' })}`)
  t.equal(res.statusCode, 401)
  t.match(res.json(), { code: 'PDP_ERR_UNAUTHORIZED', message: /reserved/ })
})

await onBothStores('failed authentications are limited per client address; good callers pass', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, ...tokenEnv, ...env, PDP_AUTH_FAILURE_LIMIT: '5', PDP_AUTH_FAILURE_WINDOW_S: '60' }, now: clock.now })
  const { policy, event } = caller(app)
  // Requests arrive through the trusted proxy at 127.0.0.1 (the test's own address), which names the client.
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  const wrong = `Bearer ${'x'.repeat(40)}`

  for (let i = 1; i <= 5; i++) t.equal((await policy(wrong, from('203.0.113.7'))).statusCode, 401, `failure ${i} within the limit`)
  const limited = await policy(wrong, from('203.0.113.7'))
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { code: 'PDP_ERR_RATE_LIMITED' })
  t.equal(limited.headers['retry-after'], '60')
  // Ten at a time: all at once could outlast the store's time-out on a busy machine, and an unanswered count is a 401 by design.
  const flood: number[] = []
  for (let i = 0; i < 300; i += 10) {
    const some = await Promise.all(Array.from({ length: 10 }, (_, j) => (j % 2 ? policy(wrong + i + j, from('203.0.113.7')) : event(wrong + i + j, from('203.0.113.7')))))
    flood.push(...some.map((r) => r.statusCode))
  }
  t.same([...new Set(flood)], [429], '300 more wrong credentials, on /admin and /events, are all 429')
  t.equal((await app.inject({ method: 'GET', url: '/admin/policy', headers: from('203.0.113.7') })).statusCode, 429, 'no credential counts as a failure too')

  const jwt = `Bearer ${await issuer.sign({ sub: 'ops-1', scope: 'pdp:admin' }, { nowMs: clock.now() })}`
  t.equal((await policy(auth.authorization, from('203.0.113.7'))).statusCode, 200, 'the static token from the same address still works')
  t.equal((await policy(jwt, from('203.0.113.7'))).statusCode, 200, 'a valid JWT from the same address still works')
  t.equal((await policy(wrong, from('198.51.100.20'))).statusCode, 401, 'another address has its own budget')

  const burst = await Promise.all(Array.from({ length: 12 }, () => policy(wrong, from('192.0.2.77'))))
  t.equal(burst.filter((r) => r.statusCode === 401).length, 5, 'concurrent failures from a fresh address: exactly the limit get through as 401')
  t.equal(burst.filter((r) => r.statusCode === 429).length, 7)

  clock.advance(30_000)
  t.equal((await policy(wrong, from('203.0.113.7'))).headers['retry-after'], '30', 'Retry-After counts down to the window\'s end')
  clock.advance(30_000)
  t.equal((await policy(wrong, from('203.0.113.7'))).statusCode, 401, 'a new window, a new budget')
})

t.test('failures are counted per IPv6 /64, and a client cannot pick its address', async (t) => {
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, PDP_AUTH_FAILURE_LIMIT: '3' } })
  const wrong = { authorization: `Bearer ${'y'.repeat(40)}` }
  for (let i = 1; i <= 3; i++) {
    const res = await app.inject({ method: 'GET', url: '/admin/policy', headers: { ...wrong, 'x-forwarded-for': `2001:db8:1:2::${i}` } })
    t.equal(res.statusCode, 401)
  }
  const sameNet = await app.inject({ method: 'GET', url: '/admin/policy', headers: { ...wrong, 'x-forwarded-for': '2001:db8:1:2:ffff::9' } })
  t.equal(sameNet.statusCode, 429, 'another address of the same /64')
  const otherNet = await app.inject({ method: 'GET', url: '/admin/policy', headers: { ...wrong, 'x-forwarded-for': '2001:db8:1:3::1' } })
  t.equal(otherNet.statusCode, 401, 'the next /64 is someone else')

  // From an untrusted peer, forwarding headers are ignored: a new header per try does not buy a new budget.
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'GET', url: '/admin/policy', remoteAddress: '192.0.2.50', headers: { ...wrong, 'x-forwarded-for': `10.0.0.${i}` } })
    statuses.push(res.statusCode)
  }
  t.same(statuses, [401, 401, 401, 429, 429])

  t.equal(failureBucket('192.0.2.1'), '192.0.2.1')
  t.equal(failureBucket('2001:0db8:0001:0002:0000:0000:0000:0001'), '2001:db8:1:2::/64')
  t.equal(failureBucket('2001:db8::1'), '2001:db8:0:0::/64')
  t.equal(failureBucket('::1'), '0:0:0:0::/64')
  t.equal(failureBucket('fe80::1%eth0'), 'fe80:0:0:0::/64')
  t.equal(failureBucket('::ffff:1.2.3.4'), '0:0:0:0::/64')
})

t.test('with the store down the limiter neither hangs nor fails; a JWT whose revocation cannot be read is refused', async (t) => {
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, ...tokenEnv, REDIS_URL: 'redis://127.0.0.1:1', PDP_STORE_TIMEOUT_MS: '30', PDP_AUTH_FAILURE_LIMIT: '2' } })
  const { policy } = caller(app)
  for (let i = 0; i < 5; i++) {
    const res = await policy(`Bearer ${'z'.repeat(40)}`)
    t.equal(res.statusCode, 401, `failure ${i + 1}: a plain 401, uncounted`)
  }
  t.equal((await policy(auth.authorization)).statusCode, 200, 'the static token needs no store')
  const jwt = await policy(`Bearer ${await issuer.sign({ sub: 'ops-1', scope: 'pdp:admin' })}`)
  t.equal(jwt.statusCode, 503)
  t.match(jwt.json(), { code: 'PDP_ERR_NOT_READY', message: /revocation/ })
})
