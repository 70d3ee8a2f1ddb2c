import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { auditCapture, build, manualClock, trustedContext } from '../helpers/build.js'
import { onBothStores } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

const ADMIN = 'admin-token-for-tests-0123456789abcdef'
const auth = { authorization: `Bearer ${ADMIN}` }
const issuer = await createIssuer()
const tokenEnv = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() }
function asker(app: FastifyInstance, clock: ReturnType<typeof manualClock>) {
  return async (subject: string, session: { id?: string; authTime?: number } = {}, extra: Record<string, unknown> = {}) => {
    const context = trustedContext(clock.now())
    const res = await app.inject({
      method: 'POST',
      url: '/decide',
      headers: auth,
      payload: {
        subject: { id: subject, tenant: 'acme' },
        action: 'read',
        resource: { type: 'documents', attributes: { owner: subject } },
        context: { ...context, session: { ...context.session, ...session } },
        ...extra,
      },
    })
    return res.json() as { decision: string; reasons: string[]; stepUp?: { level: string } }
  }
}

await onBothStores('revocation', async (t, env) => {
  const clock = manualClock()
  const capture = auditCapture()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token', ...env }, now: clock.now, auditStream: capture.stream })
  const ask = asker(app, clock)
  t.equal((await ask('carol', { id: 's-a' })).decision, 'allow')

  const bad = await app.inject({ method: 'POST', url: '/admin/revocations', headers: auth, payload: { sessionId: 's-a', subject: 'carol' } })
  t.equal(bad.statusCode, 400, 'one kind at a time')
  const empty = await app.inject({ method: 'POST', url: '/admin/revocations', headers: auth, payload: {} })
  t.equal(empty.statusCode, 400)
  const none = await app.inject({ method: 'POST', url: '/admin/revocations', payload: { sessionId: 's-a' } })
  t.equal(none.statusCode, 401)

  const res = await app.inject({ method: 'POST', url: '/admin/revocations', headers: auth, payload: { sessionId: 's-a' } })
  t.equal(res.statusCode, 201)
  t.match(await ask('carol', { id: 's-a' }), { decision: 'deny', reasons: ['session_revoked'] })
  t.equal((await ask('carol', { id: 's-b' })).decision, 'allow', 'another session is untouched')

  const everywhere = await app.inject({ method: 'POST', url: '/admin/revocations', headers: auth, payload: { subject: 'carol' } })
  t.equal(everywhere.statusCode, 201)
  t.match(await ask('carol', { id: 's-b' }), { decision: 'deny', reasons: ['session_revoked'] }, 'log out everywhere')
  clock.advance(5000)
  t.equal((await ask('carol', { id: 's-c', authTime: Math.floor(clock.now() / 1000) })).decision, 'allow', 'a new authentication afterwards works')
  t.ok(capture.lines.some((l) => l.type === 'admin' && l.action === 'revoke' && l.sessionId === 's-a'))
})

await onBothStores('sessions', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token', ...env }, now: clock.now })
  const ask = asker(app, clock)
  const authTime = Math.floor(clock.now() / 1000) - 60
  t.equal((await ask('dave', { id: 'web-1', authTime })).decision, 'deny', 'dave has no role in acme (policy deny still tracks nothing harmful)')
  t.equal((await ask('carol', { id: 'web-1', authTime })).decision, 'allow')
  clock.advance(60_000)
  await ask('carol', { id: 'phone-1', authTime })

  const list = await app.inject({ method: 'GET', url: '/admin/subjects/carol/sessions', headers: auth })
  t.equal(list.statusCode, 200)
  t.match(list.json(), { subject: 'carol', sessions: [{ id: 'phone-1', device: 'laptop-1', revoked: false }, { id: 'web-1' }] })

  // A trusted device (trust 80): idle time-out 24 min.
  clock.advance(20 * 60_000)
  t.equal((await ask('carol', { id: 'web-1', authTime })).decision, 'allow', '20 idle minutes are fine at trust 80')
  clock.advance(25 * 60_000)
  const idle = await ask('carol', { id: 'web-1', authTime })
  t.match(idle, { decision: 'step_up', reasons: ['session_expired'], stepUp: { level: 'medium' } })
  t.match(await ask('carol', { id: 'web-1', authTime }), { decision: 'step_up' }, 'still expired: a challenged request is no activity')
  const back = await ask('carol', { id: 'web-1', authTime: Math.floor(clock.now() / 1000) })
  t.equal(back.decision, 'allow', 're-authentication revives it')

  clock.advance(8 * 3_600_000)
  t.match(await ask('carol', { id: 'web-1', authTime: Math.floor(clock.now() / 1000) }), { decision: 'deny', reasons: ['session_expired'] }, 'absolute 8 h')

  const one = await app.inject({ method: 'DELETE', url: '/admin/subjects/carol/sessions/phone-1', headers: auth })
  t.match(one.json(), { revoked: ['phone-1'] })
  const listed = (await app.inject({ method: 'GET', url: '/admin/subjects/carol/sessions', headers: auth })).json()
  t.match(listed.sessions.find((s: { id: string }) => s.id === 'phone-1'), { revoked: true })
  const all = await app.inject({ method: 'DELETE', url: '/admin/subjects/carol/sessions', headers: auth })
  t.equal(all.statusCode, 200)
  t.same(all.json().revoked.sort(), ['phone-1', 'web-1'])
})

t.test('idle time-outs adapt to device trust', async (t) => {
  const clock = manualClock()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token' }, now: clock.now })
  const authTime = Math.floor(clock.now() / 1000) - 60
  const ask = (device: object) =>
    app.inject({
      method: 'POST',
      url: '/decide',
      headers: auth,
      payload: { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context: { device, session: { id: 'k', authTime, amr: ['pwd'] }, sensitivity: 'low' } },
    })
  const weak = { id: 'old-pc', managed: false, encrypted: false, osUpToDate: false }
  await ask(weak)
  clock.advance(5 * 60_000)
  t.notMatch((await ask(weak)).json().reasons, ['session_expired'], 'five idle minutes are within 6')
  clock.advance(7 * 60_000)
  const res = (await ask(weak)).json()
  t.match(res, { decision: 'step_up', reasons: ['session_expired'] }, 'trust 20: the idle limit is 6 min, floored at 5')
})

await onBothStores('just-in-time grants', async (t, env) => {
  const clock = manualClock()
  const capture = auditCapture()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, PDP_DECIDE_AUTH: 'token', ...tokenEnv, ...env }, now: clock.now, auditStream: capture.stream })
  const asAdmin = async (sub: string) => `Bearer ${await issuer.sign({ sub, scope: 'pdp:admin' }, { nowMs: clock.now() })}`
  const decide = async (subject: string, resource: object, action = 'read', tenant = 'acme') =>
    (
      await app.inject({
        method: 'POST',
        url: '/decide',
        headers: auth,
        payload: { subject: { id: subject, tenant }, action, resource, context: trustedContext(clock.now()) },
      })
    ).json()
  const grant = (payload: object) => app.inject({ method: 'POST', url: '/admin/grants', headers: auth, payload })

  t.equal((await decide('erin', { type: 'users' })).decision, 'deny')
  const created = await grant({ subject: 'erin', role: 'manager', tenant: 'acme', durationSeconds: 600, justification: 'incident 42' })
  t.equal(created.statusCode, 201)
  t.match(created.json(), { status: 'active', role: 'manager', expiresAt: clock.now() + 600_000 })
  t.match(await decide('erin', { type: 'users' }), { decision: 'allow', reasons: ['policy_allow', 'jit_grant'] }, 'effective on the next decision')
  t.equal((await decide('erin', { type: 'users' }, 'read', 'globex')).decision, 'deny', 'only in its tenant')
  clock.advance(601_000)
  t.equal((await decide('erin', { type: 'users' })).decision, 'deny', 'gone at expiry, without any timer')
  const listed = await app.inject({ method: 'GET', url: '/admin/grants/erin', headers: auth })
  t.same(listed.json().grants, [], 'expired grants are not listed')

  const perm = await grant({ subject: 'erin', permission: { resourceType: 'payroll', action: 'export' }, resource: { type: 'payroll', id: 'q3' }, durationSeconds: 60, justification: 'audit' })
  t.equal(perm.statusCode, 201)
  t.match(await decide('erin', { type: 'payroll', id: 'q3' }, 'export'), { decision: 'allow', reasons: ['jit_grant'] })
  t.equal((await decide('erin', { type: 'payroll', id: 'q4' }, 'export')).decision, 'deny', 'outside its resource scope')
  const removed = await app.inject({ method: 'DELETE', url: `/admin/grants/erin/${perm.json().id}`, headers: auth })
  t.equal(removed.statusCode, 200)
  t.equal((await decide('erin', { type: 'payroll', id: 'q3' }, 'export')).decision, 'deny', 'revoked')

  const sensitive = await grant({ subject: 'erin', role: 'admin', durationSeconds: 300, justification: 'migration' })
  t.match(sensitive.json(), { status: 'pending' })
  t.equal((await decide('erin', { type: 'system.logs' })).decision, 'deny', 'pending grants grant nothing')
  const id = sensitive.json().id
  t.equal(sensitive.json().grantedBy, 'admin-token', 'who granted is the authenticated caller')
  const approve = (as: string) => app.inject({ method: 'POST', url: `/admin/grants/erin/${id}/approve`, headers: { authorization: as } })
  const self = await approve(auth.authorization)
  t.equal(self.statusCode, 403, 'the granting admin cannot approve')
  t.match(self.json(), { code: 'PDP_ERR_FOUR_EYES' })
  const ok = await approve(await asAdmin('ops-2'))
  t.match(ok.json(), { status: 'active', grantedBy: 'admin-token', approvedBy: 'ops-2', expiresAt: clock.now() + 300_000 })
  t.equal((await decide('erin', { type: 'system.logs' })).decision, 'allow')
  const twice = await approve(await asAdmin('ops-3'))
  t.equal(twice.statusCode, 409)

  for (const [payload, field] of [
    [{ subject: 'erin', role: 'wizard', durationSeconds: 60, justification: 'x' }, '/role'],
    [{ subject: 'erin', durationSeconds: 60, justification: 'x' }, '/role'],
    [{ subject: 'erin', role: 'manager', durationSeconds: 0, justification: 'x' }, '/durationSeconds'],
    [{ subject: 'erin', role: 'manager', durationSeconds: -5, justification: 'x' }, '/durationSeconds'],
    [{ subject: 'erin', role: 'manager', durationSeconds: 28801, justification: 'x' }, '/durationSeconds'],
    [{ subject: 'erin', role: 'manager', durationSeconds: 60 }, '/justification'],
    [{ subject: '', role: 'manager', durationSeconds: 60, justification: 'x' }, '/subject'],
    [{ subject: 'erin', role: 'manager', durationSeconds: 60, justification: 'x', grantedBy: 'ops-1' }, '/grantedBy'],
  ] as const) {
    const res = await grant(payload)
    t.equal(res.statusCode, 400, `${field}: status`)
    t.equal(res.json().field, field)
  }
  const after = (await app.inject({ method: 'GET', url: '/admin/grants/erin', headers: auth })).json()
  t.equal(after.grants.length, 1, 'no bad request wrote anything')
  const missing = await app.inject({ method: 'DELETE', url: '/admin/grants/erin/nope', headers: auth })
  t.equal(missing.statusCode, 404)
  const types = capture.lines.filter((l) => l.type === 'admin').map((l) => l.action)
  t.same(types, ['grant_created', 'grant_created', 'grant_revoked', 'grant_created', 'grant_approved'], 'every grant change is audited')
})
