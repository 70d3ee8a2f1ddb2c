import t from 'tap'
import { build, manualClock } from '../helpers/build.js'
import { onBothStores } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, createIssuer, tokenFailures } from '../helpers/tokens.js'

const issuer = await createIssuer()
const jwksFile = await issuer.jwksFile()
const env = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: jwksFile, PDP_ADMIN_TOKEN: 'static-admin-token-0123456789abcdefXYZ' }
const device = { id: 'laptop-1', managed: true, encrypted: true, osUpToDate: true }

t.test('a token replaces the subject: identity, tenant and authentication facts come from its claims', async (t) => {
  const clock = manualClock()
  const app = await build(t, { env, now: clock.now })
  const nowS = Math.floor(clock.now() / 1000)
  const token = await issuer.sign({ sub: 'carol', tenant: 'acme', auth_time: nowS - 60, amr: ['pwd', 'otp'], sid: 's-42' }, { nowMs: clock.now() })
  const decide = async (tok: string, extra: object = {}) =>
    (
      await app.inject({
        method: 'POST',
        url: '/decide',
        payload: { token: tok, action: 'read', resource: { type: 'documents', attributes: { owner: 'carol' } }, context: { device }, ...extra },
      })
    ).json()
  const ok = await decide(token)
  t.match(ok, { decision: 'allow', reasons: ['policy_allow'] })

  const claimsOverBody = await decide(token, { context: { device, session: { authTime: nowS - 90_000, amr: [] } } })
  t.equal(claimsOverBody.decision, 'allow', 'the verified auth_time wins over the caller\'s session claims')

  const expired = await issuer.sign({ sub: 'carol', tenant: 'acme' }, { nowMs: clock.now() - 3_600_000 })
  t.match(await decide(expired), { decision: 'deny', reasons: ['token_expired'] })
  t.match(await decide('garbage'), { decision: 'deny', reasons: ['token_invalid'] })

  const admin = { authorization: `Bearer ${env.PDP_ADMIN_TOKEN}` }
  const jti = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti
  const revoke = await app.inject({ method: 'POST', url: '/admin/revocations', headers: admin, payload: { jti } })
  t.equal(revoke.statusCode, 201)
  t.match(await decide(token), { decision: 'deny', reasons: ['token_revoked'] })

  const second = await issuer.sign({ sub: 'carol', tenant: 'acme', auth_time: nowS - 60, amr: ['otp'], sid: 's-43' }, { nowMs: clock.now() })
  t.equal((await decide(second)).decision, 'allow')
  await app.inject({ method: 'POST', url: '/admin/revocations', headers: admin, payload: { sessionId: 's-43' } })
  t.match(await decide(second), { decision: 'deny', reasons: ['session_revoked'] }, 'by the token\'s sid')

  const third = await issuer.sign({ sub: 'carol', tenant: 'acme', auth_time: nowS - 60, amr: ['otp'] }, { nowMs: clock.now() })
  clock.advance(2000)
  await app.inject({ method: 'POST', url: '/admin/revocations', headers: admin, payload: { subject: 'carol' } })
  t.match(await decide(third), { decision: 'deny', reasons: ['token_revoked'] }, 'log out everywhere')
  clock.advance(2000)
  const fresh = await issuer.sign({ sub: 'carol', tenant: 'acme', auth_time: Math.floor(clock.now() / 1000), amr: ['otp'] }, { nowMs: clock.now() })
  t.equal((await decide(fresh)).decision, 'allow', 'a token issued afterwards works')
})

await onBothStores('every class of bad token is a deny through POST /decide, naming token_invalid or token_expired', async (t, storeEnv) => {
  const clock = manualClock()
  const app = await build(t, { env: { ...env, ...storeEnv, PDP_JWT_ROLES_CLAIM: 'realm_access.roles' }, now: clock.now })
  for (const [name, token, reason] of await tokenFailures(issuer, clock.now())) {
    const res = await app.inject({ method: 'POST', url: '/decide', payload: { token, action: 'read', resource: { type: 'documents' }, context: { device } } })
    if (token === '') {
      t.equal(res.statusCode, 400, `${name}: an empty token is bad input`)
      continue
    }
    t.equal(res.statusCode, 200, name)
    t.match(res.json(), { decision: 'deny', reasons: [reason] }, name)
    t.notMatch(res.body, token.slice(0, 40), `${name}: the answer never repeats the token`)
  }
})

t.test('control-plane callers may use a JWT with the right scope', async (t) => {
  const app = await build(t, { env })
  const withScope = await issuer.sign({ sub: 'ops-1', scope: 'openid pdp:admin' })
  const withoutScope = await issuer.sign({ sub: 'ops-2', scope: 'openid pdp:events' })
  const ok = await app.inject({ method: 'GET', url: '/admin/policy', headers: { authorization: `Bearer ${withScope}` } })
  t.equal(ok.statusCode, 200)
  const forbidden = await app.inject({ method: 'GET', url: '/admin/policy', headers: { authorization: `Bearer ${withoutScope}` } })
  t.equal(forbidden.statusCode, 403)
  t.match(forbidden.json(), { code: 'PDP_ERR_FORBIDDEN', message: /pdp:admin/ })

  const grant = await app.inject({
    method: 'POST',
    url: '/admin/grants',
    headers: { authorization: `Bearer ${withScope}` },
    payload: { subject: 'erin', role: 'manager', durationSeconds: 60, justification: 'x', grantedBy: 'someone-else' },
  })
  t.equal(grant.statusCode, 400, 'a JWT admin cannot act in another admin\'s name: the body names nobody')
  t.match(grant.json(), { code: 'PDP_ERR_VALIDATION', field: '/grantedBy' })
})

t.test('a partial token configuration stops start-up naming the variable', async (t) => {
  await t.rejects(build(t, { env: { PDP_ISSUER: ISSUER } }), { message: /^PDP_AUDIENCE: / })
  await t.rejects(build(t, { env: { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE } }), { message: /^PDP_JWKS_FILE: set exactly one/ })
  await t.rejects(build(t, { env: { PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: jwksFile } }), { message: /^PDP_ISSUER: / })
})
