import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { auditCapture, build, manualClock, trustedContext } from '../helpers/build.js'
import { onBothStores } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

const ADMIN = 'admin-token-for-tests-0123456789abcdef'
const auth = { authorization: `Bearer ${ADMIN}` }
const LONDON = '81.2.69.142'
const SYDNEY = '103.86.96.100'
const ATTACKER = '5.9.0.1'

type Clock = ReturnType<typeof manualClock>

function client(app: FastifyInstance, clock: Clock) {
  const event = (type: string, subject: string, extra: Record<string, unknown> = {}) =>
    app.inject({ method: 'POST', url: '/events', headers: auth, payload: { type, subject, ...extra } })
  const decide = async (subject: string, extra: { ip?: string; session?: Record<string, unknown>; device?: string } = {}) => {
    const context: Record<string, unknown> = { ...trustedContext(clock.now(), extra.device) }
    if (extra.ip) context.ip = extra.ip
    if (extra.session) context.session = extra.session
    const res = await app.inject({
      method: 'POST',
      url: '/decide',
      headers: auth,
      payload: { subject: { id: subject, tenant: 'acme' }, action: 'read', resource: { type: 'documents', attributes: { owner: subject } }, context },
    })
    return res.json() as { decision: string; reasons: string[]; stepUp?: { level: string } }
  }
  return { event, decide }
}

await onBothStores('brute force locks the account, and the lock ends', async (t, env) => {
  const clock = manualClock()
  const capture = auditCapture()
  const app = await build(t, { env: { ...env, PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token' }, now: clock.now, auditStream: capture.stream })
  const { event, decide } = client(app, clock)
  t.equal((await decide('carol')).decision, 'allow')
  for (let i = 1; i <= 4; i++) {
    const res = await event('login_failure', 'carol', { ip: LONDON, deviceId: 'laptop-1' })
    t.equal(res.statusCode, 200)
    t.same(res.json().fired, [], `failure ${i} fires nothing`)
    clock.advance(10_000)
  }
  const fifth = await event('login_failure', 'carol', { ip: LONDON })
  t.match(fifth.json().fired, [{ rule: 'brute_force', target: { subject: 'carol' }, actions: ['lockout', 'notify'] }])
  t.match(await decide('carol'), { decision: 'deny', reasons: ['account_locked'] })
  t.equal((await decide('bob')).decision, 'allow', 'other subjects are untouched')

  const status = await app.inject({ method: 'GET', url: '/admin/subjects/carol/restrictions', headers: auth })
  t.match(status.json(), { subject: 'carol', locked: { rule: 'brute_force', since: clock.now(), until: clock.now() + 900_000 } })
  t.match(
    capture.lines.find((l) => l.type === 'response_action'),
    { rule: 'brute_force', action: 'lockout', subject: 'carol' },
  )
  t.equal(capture.lines.filter((l) => l.type === 'security_event').length, 5, 'every event is in the audit stream')

  clock.advance(899_000)
  t.match(await decide('carol'), { decision: 'deny', reasons: ['account_locked'] }, 'still locked a second before the end')
  clock.advance(1_000)
  t.equal((await decide('carol')).decision, 'allow', 'the lockout ends on its own')

  const device = await app.inject({ method: 'GET', url: '/admin/subjects/carol/restrictions', headers: auth })
  t.same(device.json(), { subject: 'carol' })
})

await onBothStores('a successful login resets the failure count; an admin can lift a lock', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { ...env, PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token' }, now: clock.now })
  const { event, decide } = client(app, clock)
  for (let i = 0; i < 4; i++) await event('login_failure', 'carol')
  await event('login_success', 'carol')
  t.same((await event('login_failure', 'carol')).json().fired, [], 'the count started again after the success')
  for (let i = 0; i < 3; i++) await event('mfa_failure', 'carol')
  t.match((await event('login_failure', 'carol')).json().fired, [{ rule: 'brute_force' }], 'second-factor failures count too')
  t.equal((await decide('carol')).decision, 'deny')

  const lift = await app.inject({ method: 'DELETE', url: '/admin/subjects/carol/restrictions/lock', headers: auth })
  t.same(lift.json(), { subject: 'carol', lifted: 'lock' })
  t.equal((await decide('carol')).decision, 'allow')
  const again = await app.inject({ method: 'DELETE', url: '/admin/subjects/carol/restrictions/lock', headers: auth })
  t.equal(again.statusCode, 404)
})

await onBothStores('credential stuffing from one address puts that address behind a step-up', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { ...env, PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token' }, now: clock.now })
  const { event, decide } = client(app, clock)
  for (let i = 0; i < 9; i++) {
    t.same((await event('login_failure', `victim-${i}`, { ip: ATTACKER })).json().fired, [])
    clock.advance(60_000)
  }
  t.same((await event('login_failure', 'victim-0', { ip: ATTACKER })).json().fired, [], 'the same subject again is not a new one')
  const tenth = await event('login_failure', 'victim-9', { ip: ATTACKER })
  t.match(tenth.json().fired, [{ rule: 'credential_stuffing', target: { ip: ATTACKER }, actions: ['block_ip', 'notify'] }])

  t.equal((await decide('carol', { ip: LONDON })).decision, 'allow', 'other addresses are untouched')
  const fromThere = await decide('bob', { ip: ATTACKER })
  t.match(fromThere, { decision: 'step_up', reasons: ['suspicious_ip'], stepUp: { level: 'high' } })
  const proved = await decide('bob', { ip: ATTACKER, session: { id: 's-1', authTime: Math.floor(clock.now() / 1000), amr: ['hwk'] } })
  t.equal(proved.decision, 'allow', 'a fresh hardware-key authentication made after the block passes')

  const status = await app.inject({ method: 'GET', url: `/admin/ips/${ATTACKER}`, headers: auth })
  t.match(status.json(), { ip: ATTACKER, restriction: { rule: 'credential_stuffing', mode: 'step_up', level: 'high' } })
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/ips/${ATTACKER}`, headers: auth })).statusCode, 200)
  t.equal((await decide('bob', { ip: ATTACKER })).decision, 'allow')
})

await onBothStores('events from three countries within a day force a fresh step-up', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { ...env, PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token' }, now: clock.now })
  const { event, decide } = client(app, clock)
  const places = [LONDON, LONDON, SYDNEY, LONDON]
  for (const ip of places) {
    t.same((await event('login_success', 'carol', { ip })).json().fired, [])
    clock.advance(3_600_000)
  }
  t.match((await event('login_success', 'carol', { ip: '8.8.8.8' })).json().fired, [{ rule: 'location_pattern', actions: ['require_step_up', 'notify'] }])
  const before = Math.floor(clock.now() / 1000) - 30
  t.match(await decide('carol', { session: { id: 's-1', authTime: before, amr: ['hwk'] } }), { decision: 'step_up', reasons: ['security_step_up'] }, 'an authentication from before the alarm does not count')
  clock.advance(5_000)
  t.equal((await decide('carol', { session: { id: 's-1', authTime: Math.floor(clock.now() / 1000), amr: ['hwk'] } })).decision, 'allow')
})

await onBothStores('impossible travel on a new device is taken for an account takeover: sessions revoked, account frozen', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { ...env, PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token' }, now: clock.now })
  const { decide } = client(app, clock)
  t.equal((await decide('carol', { ip: LONDON, device: 'laptop-1' })).decision, 'allow')
  clock.advance(60_000)
  const travelled = await decide('carol', { ip: SYDNEY, device: 'laptop-1' })
  t.equal(travelled.decision, 'step_up', 'a known device far away is asked to prove itself')
  t.ok(travelled.reasons.includes('impossible_travel'))
  await app.responder.settled()
  t.same((await app.inject({ method: 'GET', url: '/admin/subjects/carol/restrictions', headers: auth })).json(), { subject: 'carol' }, 'and nothing more')

  clock.advance(60_000)
  const takeover = await decide('carol', { ip: LONDON, device: 'unknown-phone' })
  t.ok(takeover.reasons.includes('impossible_travel'), 'Sydney to London in a minute, from a phone never seen before')
  await app.responder.settled()
  const after = await decide('carol', { ip: LONDON, device: 'laptop-1', session: { id: 's-2', authTime: Math.floor(clock.now() / 1000) + 5, amr: ['hwk'] } })
  t.match(after, { decision: 'deny', reasons: ['account_frozen'] })
  const status = (await app.inject({ method: 'GET', url: '/admin/subjects/carol/restrictions', headers: auth })).json()
  t.match(status, { frozen: { rule: 'account_takeover' } })
  t.notOk(status.frozen.until, 'a freeze lasts until an admin lifts it')

  await app.inject({ method: 'DELETE', url: '/admin/subjects/carol/restrictions/freeze', headers: auth })
  clock.advance(1_000)
  const oldSession = await decide('carol', { ip: LONDON, device: 'laptop-1', session: { id: 's-0', authTime: Math.floor(clock.now() / 1000) - 600, amr: ['pwd'] } })
  t.match(oldSession, { decision: 'deny', reasons: ['session_revoked'] }, 'sessions from before the takeover stay revoked')
})

t.test('bad events are 400s that name the field and change nothing', async (t) => {
  const clock = manualClock()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN }, now: clock.now })
  const { event } = client(app, clock)
  const nowS = Math.floor(clock.now() / 1000)
  const bad: [string, Record<string, unknown>, string][] = [
    ['an unknown type', { type: 'login_maybe', subject: 'carol' }, 'type'],
    ['no subject', { type: 'login_failure' }, 'subject'],
    ['an empty subject', { type: 'login_failure', subject: '' }, 'subject'],
    ['a bad address', { type: 'login_failure', subject: 'carol', ip: '999.1.1.1' }, '/ip'],
    ['a time two days ago', { type: 'login_failure', subject: 'carol', time: nowS - 2 * 86_400 }, '/time'],
    ['a time an hour ahead', { type: 'login_failure', subject: 'carol', time: nowS + 3600 }, '/time'],
    ['a negative time', { type: 'login_failure', subject: 'carol', time: -5 }, 'time'],
    ['an unknown field', { type: 'login_failure', subject: 'carol', severity: 'high' }, 'severity'],
  ]
  for (const [name, payload, field] of bad) {
    const res = await app.inject({ method: 'POST', url: '/events', headers: auth, payload })
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), { code: 'PDP_ERR_VALIDATION' }, name)
    t.match(JSON.stringify(res.json()), field, `${name} names ${field}`)
  }
  // Had any of the eight bad failures been counted, the fourth good one would lock the account.
  for (let i = 0; i < 4; i++) t.same((await event('login_failure', 'carol')).json().fired, [])
})

t.test('/events needs a caller with pdp:events (or pdp:admin), and is rate limited per caller', async (t) => {
  const issuer = await createIssuer()
  const clock = manualClock()
  const env = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile(), PDP_RATE_LIMIT_EVENTS: '3' }
  const app = await build(t, { env, now: clock.now })
  const payload = { type: 'login_success', subject: 'carol' }
  const as = async (scope: string, sub = 'idp-1') => `Bearer ${await issuer.sign({ sub, scope }, { nowMs: clock.now() })}`
  t.equal((await app.inject({ method: 'POST', url: '/events', payload })).statusCode, 401, 'no credential')
  t.equal((await app.inject({ method: 'POST', url: '/events', payload, headers: { authorization: await as('pdp:decide') } })).statusCode, 403, 'wrong scope')
  const events = await as('pdp:events')
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'POST', url: '/events', payload, headers: { authorization: events } })).statusCode, 200)
  const limited = await app.inject({ method: 'POST', url: '/events', payload, headers: { authorization: events } })
  t.equal(limited.statusCode, 429)
  t.match(limited.json(), { code: 'PDP_ERR_RATE_LIMITED' })
  const other = await app.inject({ method: 'POST', url: '/events', payload, headers: { authorization: await as('pdp:events', 'idp-2') } })
  t.equal(other.statusCode, 200, 'another caller has its own budget')
})

t.test('the control plane refuses everything when no credential is configured', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'POST', url: '/events', headers: auth, payload: { type: 'login_success', subject: 'carol' } })
  t.equal(res.statusCode, 403)
})

t.test('an event while the store is down is a 503 and changes nothing', async (t) => {
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, REDIS_URL: 'redis://127.0.0.1:1', PDP_STORE_TIMEOUT_MS: '30' } })
  const res = await app.inject({ method: 'POST', url: '/events', headers: auth, payload: { type: 'login_failure', subject: 'carol' } })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { code: 'PDP_ERR_NOT_READY' })
})
