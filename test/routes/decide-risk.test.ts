import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CALLER, build, manualClock, policyCopy, trustedContext } from '../helpers/build.js'
import { STORE_TIMEOUT_MS, isolatedPrefix, redisTarget } from '../helpers/redis.js'

const LONDON = '81.2.69.142'
const SYDNEY = '103.86.96.100'
const read = { subject: { id: 'carol', tenant: 'acme' }, action: 'read', resource: { type: 'documents', id: 'd1', attributes: { owner: 'carol' } } }

t.test('London, then Sydney seconds later, is not an allow and names impossible travel', async (t) => {
  const clock = manualClock()
  const app = await build(t, { env: CALLER.env, now: clock.now })
  const first = await app.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...read, context: { ...trustedContext(clock.now()), ip: LONDON } } })
  t.equal(first.json().decision, 'allow')
  clock.advance(30_000)
  const second = (await app.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...read, context: { ...trustedContext(clock.now()), ip: SYDNEY } } })).json()
  t.not(second.decision, 'allow')
  t.ok(second.reasons.includes('impossible_travel'))
  t.equal(second.decision, 'step_up', 'the session\'s earlier one-time password does not prove who is in Sydney')

  const proved = (
    await app.inject({
      method: 'POST',
      url: '/decide',
      headers: CALLER.headers,
      payload: { ...read, context: { ...trustedContext(clock.now()), session: { authTime: Math.floor(clock.now() / 1000), amr: ['otp'] }, ip: SYDNEY } },
    })
  ).json()
  t.equal(proved.decision, 'allow', 'an authentication made after the move does')
  t.match(second.risk.signals.find((s: { name: string }) => s.name === 'impossibleTravel'), { reason: 'impossible_travel', value: { from: 'GB', to: 'AU' } })
})

t.test('the same two requests a day apart are allowed', async (t) => {
  const clock = manualClock()
  const app = await build(t, { env: CALLER.env, now: clock.now })
  await app.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...read, context: { ...trustedContext(clock.now()), ip: LONDON } } })
  clock.advance(24 * 3_600_000)
  const later = (await app.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...read, context: { ...trustedContext(clock.now()), ip: SYDNEY } } })).json()
  t.equal(later.decision, 'allow')
  t.notOk(later.reasons.includes('impossible_travel'))
})

t.test('an unknown device at high sensitivity steps up; a fresh hardware-key authentication passes', async (t) => {
  const clock = manualClock()
  const app = await build(t, { env: CALLER.env, now: clock.now })
  const nowS = Math.floor(clock.now() / 1000)
  const ask = (session: object) =>
    app.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...read, context: { device: { id: 'new-phone' }, session, sensitivity: 'high' } } })
  const challenged = (await ask({ authTime: nowS - 600, amr: ['pwd'] })).json()
  t.equal(challenged.decision, 'step_up')
  t.match(challenged.stepUp, { level: 'low', methods: ['totp'], maxAge: 3600, acrValues: ['aal2'] })
  t.same(challenged.reasons.slice(0, 2), ['step_up_required', 'new_device'])
  t.match(challenged.risk, { score: 39, level: 'low', sensitivity: 'high', multiplier: 1.3 })
  t.match(challenged.risk.signals, [
    { name: 'deviceTrust', value: { trust: 50, known: false }, contribution: 30, reason: 'new_device' },
    { name: 'location', contribution: 0 },
    { name: 'behaviour', contribution: 0 },
    { name: 'authAge', contribution: 0 },
  ])

  const critical = (
    await app.inject({
      method: 'POST',
      url: '/decide',
      headers: CALLER.headers,
      payload: { ...read, context: { device: { id: 'kiosk', managed: false, encrypted: false }, session: { authTime: nowS - 600, amr: ['pwd'] }, sensitivity: 'critical' } },
    })
  ).json()
  t.match(critical, { decision: 'step_up', stepUp: { level: 'high', methods: ['webauthn'], maxAge: 300 } })

  const passed = (
    await app.inject({
      method: 'POST',
      url: '/decide',
      headers: CALLER.headers,
      payload: { ...read, context: { device: { id: 'kiosk', managed: false, encrypted: false }, session: { authTime: nowS - 20, amr: ['pwd', 'hwk'] }, sensitivity: 'critical' } },
    })
  ).json()
  t.equal(passed.decision, 'allow')
  t.same(passed.reasons.slice(0, 2), ['policy_allow', 'step_up_satisfied'])
})

t.test('a policy deny is never softened into a step-up', async (t) => {
  const app = await build(t, { env: CALLER.env })
  const res = (await app.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...read, action: 'delete', resource: { type: 'documents', attributes: { owner: 'bob' } } } })).json()
  t.equal(res.decision, 'deny')
  t.same(res.reasons, ['no_matching_policy'])
  t.equal(res.risk, undefined)
})

t.test('a store that fails gives the configured verdict, never a hang or a 500', async (t) => {
  const down = { REDIS_URL: 'redis://127.0.0.1:1', PDP_STORE_TIMEOUT_MS: '30' }
  const closed = await build(t, { env: { ...down, ...CALLER.env } })
  const payload = { ...read, context: trustedContext(Date.now()) }
  const c = await closed.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload })
  t.equal(c.statusCode, 200)
  t.match(c.json(), { decision: 'deny', reasons: ['store_unavailable'] })
  const ready = await closed.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200, 'the instance still answers with the defined verdict, so it stays ready')
  t.match(ready.json(), { status: 'ready', warnings: [/store unreachable/], store: { kind: 'redis', ok: false } })

  const open = await build(t, { env: { ...down, ...CALLER.env, PDP_STORE_FAILURE: 'open' } })
  const o = (await open.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload })).json()
  t.match(o, { decision: 'step_up', reasons: ['store_unavailable', 'policy_allow'], stepUp: { level: 'high', methods: ['webauthn'] } })
  const denied = (await open.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...payload, action: 'fly' } })).json()
  t.equal(denied.decision, 'deny', 'failing open never turns a policy deny into anything else')
  const metrics = await closed.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /pdp_store_errors_total 1/)
})

t.test('a broken risk.yaml edit is refused and the old one keeps scoring', async (t) => {
  const dir = await policyCopy(t)
  const app = await build(t, { env: { ...CALLER.env, PDP_POLICY_DIR: dir } })
  await writeFile(join(dir, 'risk.yaml'), 'thresholds:\n  low: 90\n')
  const result = await app.policy.reload()
  t.match(result, { ok: false, error: /^risk\.yaml:1: thresholds: must be ordered/ })
  await writeFile(join(dir, 'risk.yaml'), 'sensitivity: { default: low }\n')
  t.match(await app.policy.reload(), { ok: true })
  const res = (await app.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...read, context: { device: { id: 'p' } } } })).json()
  t.match(res.risk, { sensitivity: 'low', multiplier: 0.7 }, 'the new risk policy applies')
})

const target = await redisTarget()
t.test('two PDP instances on one Redis share devices, locations and baselines', { skip: target.skip }, async (t) => {
  const clock = manualClock()
  const env = { REDIS_URL: target.url!, PDP_REDIS_PREFIX: isolatedPrefix(t, target.url!), PDP_STORE_TIMEOUT_MS: STORE_TIMEOUT_MS }
  const a = await build(t, { env: { ...env, ...CALLER.env }, now: clock.now })
  const b = await build(t, { env: { ...env, ...CALLER.env }, now: clock.now })
  const nowS = Math.floor(clock.now() / 1000)
  const context = (ip: string) => ({ device: { id: 'shared-phone' }, ip, session: { authTime: nowS - 60, amr: ['pwd'] } })
  const onA = (await a.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...read, context: context(LONDON) } })).json()
  t.match(onA.risk.signals[0], { value: { known: false }, reason: 'new_device' })
  clock.advance(60_000)
  const onB = (await b.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { ...read, context: context(SYDNEY) } })).json()
  t.match(onB.risk.signals[0], { value: { known: true } }, 'B knows the device A saw')
  t.ok(onB.reasons.includes('impossible_travel'), 'B compares with the location A recorded')
})
