import t from 'tap'
import { CALLER, build, manualClock } from '../helpers/build.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

// A device's trust and its remembered step-up belong to the device, so only an authenticated source may name it:
// a claim the identity provider signed, or a header the gateway sets itself (from an mTLS client certificate).

const issuer = await createIssuer()
const tokenEnv = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() }
const LONDON = '81.2.69.142'
const HOUR = 3_600_000

/** Alice deletes a user (high sensitivity) from her laptop, is asked to step up and does, with a fresh hardware-key login: the laptop remembers it. */
async function trustedLaptop(env: Record<string, string>) {
  const clock = manualClock()
  const nowS = () => Math.floor(clock.now() / 1000)
  const build_ = (t: Parameters<typeof build>[0], extra: Record<string, string> = {}) => build(t, { env: { ...env, ...tokenEnv, ...CALLER.env, ...extra }, now: clock.now })
  const remember = async (app: Awaited<ReturnType<typeof build>>) => {
    const res = await app.inject({
      method: 'POST',
      url: '/decide',
      headers: CALLER.headers,
      payload: {
        subject: { id: 'alice', tenant: 'acme' },
        action: 'delete',
        resource: { type: 'users', id: 'u1' },
        context: { ip: LONDON, sensitivity: 'high', device: { id: 'alice-laptop' }, session: { id: 's1', authTime: nowS() - 30, amr: ['hwk', 'pwd'] } },
      },
    })
    return res.json()
  }
  return { clock, nowS, build: build_, remember }
}

const forward = (token: string, device: string) => ({
  method: 'GET' as const,
  url: '/authz/forward',
  headers: { authorization: `Bearer ${token}`, 'x-forwarded-method': 'DELETE', 'x-forwarded-uri': '/api/users/u9', 'x-forwarded-for': LONDON, 'x-device-id': device },
})

t.test('a stolen stale token with a plain X-Device-Id naming the owner\'s laptop inherits nothing', async (t) => {
  const { clock, nowS, build, remember } = await trustedLaptop({})
  const app = await build(t)
  const stepped = await remember(app)
  t.equal(stepped.decision, 'allow', 'alice stepped up on her laptop')
  t.ok(stepped.reasons.includes('step_up_satisfied'), 'and the laptop remembers it')
  clock.advance(6 * HOUR)
  const stolen = await issuer.sign({ sub: 'alice', tenant: 'acme', auth_time: nowS() - 6 * 3600, amr: ['pwd'] }, { nowMs: clock.now() })
  const res = await app.inject(forward(stolen, 'alice-laptop'))
  t.equal(res.statusCode, 401, 'the header is not believed: a step-up, not the laptop\'s remembered one')
  t.match(res.json(), { decision: 'step_up' })
})

t.test('the same header set by a trusted gateway from an authenticated source is the device', async (t) => {
  const { clock, nowS, build, remember } = await trustedLaptop({})
  const app = await build(t, { PDP_DEVICE_HEADER_TRUSTED: 'true' })
  await remember(app)
  clock.advance(HOUR)
  const token = await issuer.sign({ sub: 'alice', tenant: 'acme', auth_time: nowS() - 3600, amr: ['pwd'] }, { nowMs: clock.now() })
  const res = await app.inject(forward(token, 'alice-laptop'))
  t.equal(res.statusCode, 200, 'the laptop\'s remembered step-up holds')
  const other = await app.inject(forward(token, 'unknown-pc'))
  t.equal(other.statusCode, 401, 'another device does not share it')

  const untrustedPeer = await build(t, { PDP_DEVICE_HEADER_TRUSTED: 'true', PDP_TRUSTED_PROXIES: '10.0.0.0/8' })
  await remember(untrustedPeer)
  const fromElsewhere = await untrustedPeer.inject(forward(token, 'alice-laptop'))
  t.equal(fromElsewhere.statusCode, 401, 'from a peer that is not a trusted proxy the header is ignored')
})

t.test('a device claim in a verified token names the device; the caller cannot override it', async (t) => {
  const { clock, nowS, build, remember } = await trustedLaptop({})
  const app = await build(t, { PDP_JWT_DEVICE_CLAIM: 'device.id' })
  await remember(app)
  clock.advance(HOUR)
  const claims = { sub: 'alice', tenant: 'acme', auth_time: nowS() - 3600, amr: ['pwd'] }
  const onLaptop = await issuer.sign({ ...claims, device: { id: 'alice-laptop' } }, { nowMs: clock.now() })
  t.equal((await app.inject(forward(onLaptop, 'whatever'))).statusCode, 200, 'the claim, not the header, names the laptop')
  const onPhone = await issuer.sign({ ...claims, device: { id: 'alice-phone' } }, { nowMs: clock.now() })
  t.equal((await app.inject(forward(onPhone, 'alice-laptop'))).statusCode, 401, 'a header cannot swap the signed device')

  const viaDecide = await app.inject({
    method: 'POST',
    url: '/decide',
    headers: CALLER.headers,
    payload: { token: onPhone, action: 'delete', resource: { type: 'users', id: 'u9' }, context: { ip: LONDON, sensitivity: 'high', device: { id: 'alice-laptop', managed: true } } },
  })
  t.equal(viaDecide.json().decision, 'step_up', 'on /decide too, the token\'s device outranks the one in the body')
  const bad = await issuer.sign({ ...claims, device: { id: 'a\u0000b' } }, { nowMs: clock.now() })
  t.equal((await app.inject(forward(bad, 'x'))).statusCode, 401, 'a device claim that cannot be an id makes the token invalid')
})
