import t from 'tap'
import { build, manualClock } from '../helpers/build.js'
import { onBothStores } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

// A service that calls /decide with a JWT (scope pdp:decide) vouches for the subjects it names, so its credential is
// revocable like every other: once revoked, it is refused; while revocations cannot be read, it vouches for nobody.

const ADMIN = 'admin-token-for-tests-0123456789abcdef'
const issuer = await createIssuer()
const tokenEnv = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile(), PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token' }
const jtiOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti
const body = { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' } }

await onBothStores('a revoked pdp:decide credential is refused at once', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { ...tokenEnv, ...env }, now: clock.now })
  const service = await issuer.sign({ sub: 'orders-service', scope: 'pdp:decide' }, { nowMs: clock.now() })
  const ask = () => app.inject({ method: 'POST', url: '/decide', headers: { authorization: `Bearer ${service}` }, payload: body })
  t.equal((await ask()).statusCode, 200)
  const revoked = await app.inject({ method: 'POST', url: '/admin/revocations', headers: { authorization: `Bearer ${ADMIN}` }, payload: { jti: jtiOf(service) } })
  t.equal(revoked.statusCode, 201)
  const refused = await ask()
  t.equal(refused.statusCode, 401)
  t.match(refused.json(), { code: 'PDP_ERR_UNAUTHORIZED', message: /revoked/ })
})

t.test('while the store is down a pdp:decide JWT still gets the store-failure verdict, not a 5xx', async (t) => {
  const clock = manualClock()
  const down = { REDIS_URL: 'redis://127.0.0.1:1', PDP_STORE_TIMEOUT_MS: '30' }
  const service = await issuer.sign({ sub: 'orders-service', scope: 'pdp:decide' }, { nowMs: clock.now() })
  for (const [failure, verdict] of [
    ['closed', 'deny'],
    ['open', 'step_up'],
  ] as const) {
    const app = await build(t, { env: { ...tokenEnv, ...down, PDP_STORE_FAILURE: failure }, now: clock.now })
    const res = await app.inject({ method: 'POST', url: '/decide', headers: { authorization: `Bearer ${service}` }, payload: body })
    t.equal(res.statusCode, 200, failure)
    t.match(res.json(), { decision: verdict, reasons: ['store_unavailable'] }, failure)
  }
})
