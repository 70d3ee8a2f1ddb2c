import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { build, trustedContext } from '../../helpers/build.js'
import { isolatedPrefix, redisTarget } from '../../helpers/redis.js'
import { duringStall, stallProxy } from '../../helpers/stall-proxy.js'

const ADMIN = 'admin-token-for-tests-0123456789abcdef'
const auth = { authorization: `Bearer ${ADMIN}` }
const target = await redisTarget()

/** The app on the shared Redis, reached through a proxy the test can stall (the server itself is never paused). */
async function behindProxy(t: Test, env: Record<string, string> = {}) {
  const upstream = new URL(target.url!)
  const proxy = await stallProxy(t, upstream.hostname, Number(upstream.port || 6379))
  const app = await build(t, {
    env: {
      REDIS_URL: `redis://127.0.0.1:${proxy.port}${upstream.pathname}`,
      PDP_REDIS_PREFIX: isolatedPrefix(t, target.url!),
      // Ends each call into the stalled proxy (which never answers); far above a pause of the event loop, so that
      // calls before the stall, which Redis does answer, never lose the race to it.
      PDP_STORE_TIMEOUT_MS: '1000',
      PDP_ADMIN_TOKEN: ADMIN,
      ...env,
    },
  })
  return { app, proxy }
}

t.test('with Redis stalled, the control plane answers at once (the rate limiter skips, writes are 503)', { skip: target.skip }, async (t) => {
  const { app, proxy } = await behindProxy(t)
  const status = (app: FastifyInstance) => app.inject({ method: 'GET', url: '/admin/policy', headers: auth })
  const before = await status(app)
  t.equal(before.statusCode, 200)
  t.equal(before.headers['x-ratelimit-remaining'], '119', 'counted in Redis before the stall')

  proxy.pause()
  const ask = async (name: string, request: InjectOptions) => {
    const outcome = await duringStall(app.inject(request), () => proxy.paused)
    if (outcome === 'hung') {
      t.fail(`${name}: still waiting for the stalled Redis`)
      return undefined
    }
    t.ok(outcome.duringStall, `${name}: answered while Redis was still stalled`)
    return outcome.value
  }

  const policy = await ask('GET /admin/policy', { method: 'GET', url: '/admin/policy', headers: auth })
  t.equal(policy?.statusCode, 200, 'a read that needs no store is served; the limiter skipped')

  const revocation = await ask('POST /admin/revocations', { method: 'POST', url: '/admin/revocations', headers: auth, payload: { sessionId: 's-1' } })
  t.equal(revocation?.statusCode, 503)
  t.match(revocation?.json(), { code: 'PDP_ERR_NOT_READY', message: /nothing was changed/ })

  const event = await ask('POST /events', { method: 'POST', url: '/events', headers: auth, payload: { type: 'login_failure', subject: 'carol' } })
  t.equal(event?.statusCode, 503)
  t.match(event?.json(), { code: 'PDP_ERR_NOT_READY' })

  const decision = await ask('POST /decide', {
    method: 'POST',
    url: '/decide',
    payload: { subject: { id: 'carol', tenant: 'acme' }, action: 'read', resource: { type: 'documents', attributes: { owner: 'carol' } }, context: trustedContext(Date.now()) },
  })
  t.match(decision?.json(), { decision: 'deny', reasons: ['store_unavailable'] })
  t.ok(proxy.held > 0, 'the commands really reached the stalled connection')

  proxy.resume()
  const after = await app.inject({ method: 'POST', url: '/admin/revocations', headers: auth, payload: { sessionId: 's-1' } })
  t.equal(after.statusCode, 201, 'once Redis answers again, writes succeed')
})

t.test('on Redis the control plane is still rate limited per caller', { skip: target.skip }, async (t) => {
  const { app } = await behindProxy(t, { PDP_RATE_LIMIT_ADMIN: '3', PDP_RATE_LIMIT_EVENTS: '2' })
  const codes: number[] = []
  for (let i = 0; i < 4; i++) codes.push((await app.inject({ method: 'GET', url: '/admin/policy', headers: auth })).statusCode)
  t.same(codes, [200, 200, 200, 429])
  const limited = await app.inject({ method: 'GET', url: '/admin/policy', headers: auth })
  t.match(limited.json(), { code: 'PDP_ERR_RATE_LIMITED' })
  t.ok(Number(limited.headers['retry-after']) > 0, 'the window comes from the counter\'s TTL')

  const events: number[] = []
  for (let i = 0; i < 3; i++) {
    events.push((await app.inject({ method: 'POST', url: '/events', headers: auth, payload: { type: 'login_success', subject: `u${i}` } })).statusCode)
  }
  t.same(events, [200, 200, 429], '/events keeps its own limit and counter')
})
