import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { MemoryStateStore } from '../../src/store/memory-store.js'
import { CALLER, build, manualClock } from '../helpers/build.js'
import { onBothStores } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

const issuer = await createIssuer()
const tokenEnv = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() }

// With the default PDP_DECIDE_AUTH=none anyone who reaches /decide may ask about anyone. Asking must not be
// enough to change what the PDP remembers about them: no account frozen, no device registered, no baseline moved.

const LONDON = '81.2.69.142'
const SYDNEY = '103.86.96.100'

/** How many keys the app's store holds (its own prefix on Redis). */
async function keyCount(app: FastifyInstance, env: Record<string, string>): Promise<number> {
  if (app.store instanceof MemoryStateStore) return app.store.size
  const redis = new Redis(env.REDIS_URL!)
  try {
    return (await redis.keys(`${env.PDP_REDIS_PREFIX}*`)).length
  } finally {
    await redis.quit()
  }
}

await onBothStores('an anonymous caller cannot freeze, lock or retrain anyone', async (t, env) => {
  const clock = manualClock()
  const anonymous = await build(t, { env: { ...env, ...tokenEnv, PDP_ADMIN_TOKEN: CALLER.env.PDP_ADMIN_TOKEN }, now: clock.now })
  const nowS = () => Math.floor(clock.now() / 1000)
  const ask = (ip: string, device: string, session = { id: 's-attack', authTime: nowS() - 7200, amr: ['pwd'] }) =>
    anonymous.inject({
      method: 'POST',
      url: '/decide',
      payload: { subject: { id: 'alice', tenant: 'acme' }, action: 'read', resource: { type: 'documents', id: 'd1' }, context: { ip, device: { id: device }, session } },
    })

  const first = await ask(LONDON, 'attacker-1')
  t.equal(first.statusCode, 200)
  clock.advance(1000)
  const second = (await ask(SYDNEY, 'attacker-2')).json()
  t.match(second.reasons, [], 'the second request is answered')
  t.notOk(second.reasons.includes('impossible_travel'), 'the first anonymous request left no location behind')
  t.equal(await keyCount(anonymous, env), 0, 'nothing at all was written to the store')

  const restrictions = await anonymous.inject({ method: 'GET', url: '/admin/subjects/alice/restrictions', headers: CALLER.headers })
  t.equal(restrictions.statusCode, 200)
  t.notMatch(JSON.stringify(restrictions.json()), /freeze|lock/, 'no restriction on alice')

  // Alice herself, with a token the PDP verifies and a fresh hardware-key login: not frozen, and her devices are new.
  const token = await issuer.sign({ sub: 'alice', tenant: 'acme', auth_time: nowS() - 30, amr: ['hwk', 'pwd'], sid: 's-own' }, { nowMs: clock.now() })
  const own = await anonymous.inject({
    method: 'POST',
    url: '/decide',
    payload: {
      token,
      action: 'read',
      resource: { type: 'documents', id: 'd1' },
      context: { ip: SYDNEY, device: { id: 'attacker-2', managed: true, encrypted: true, osUpToDate: true } },
    },
  })
  const decision = own.json()
  t.equal(decision.decision, 'allow', 'her own fresh hardware-key login is allowed')
  t.notOk(decision.reasons.includes('account_frozen'))
  t.match(decision.risk.signals.find((s: { name: string }) => s.name === 'deviceTrust'), { value: { known: false } }, 'the attacker\'s device was never registered')
  t.match(decision.risk.signals.find((s: { name: string }) => s.name === 'behaviour'), { value: { history: 0 } }, 'her baseline saw none of the anonymous requests')
})

await onBothStores('the same requests from a trusted service do learn, and do trip account takeover', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { ...env, ...CALLER.env }, now: clock.now })
  const nowS = () => Math.floor(clock.now() / 1000)
  const ask = (ip: string, device: string) =>
    app.inject({
      method: 'POST',
      url: '/decide',
      headers: CALLER.headers,
      payload: { subject: { id: 'alice', tenant: 'acme' }, action: 'read', resource: { type: 'documents', id: 'd1' }, context: { ip, device: { id: device }, session: { id: 's-1', authTime: nowS() - 7200, amr: ['pwd'] } } },
    })
  await ask(LONDON, 'laptop')
  clock.advance(1000)
  const second = (await ask(SYDNEY, 'phone')).json()
  t.ok(second.reasons.includes('impossible_travel'), 'the trusted caller\'s first request was remembered')
  t.ok((await keyCount(app, env)) > 0, 'state was written')
})

await onBothStores('with PDP_DECIDE_AUTH=none a pdp:decide credential, when sent, is checked and vouches', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { ...env, ...tokenEnv, PDP_ADMIN_TOKEN: CALLER.env.PDP_ADMIN_TOKEN }, now: clock.now })
  const ask = (headers: Record<string, string>) =>
    app.inject({
      method: 'POST',
      url: '/decide',
      headers,
      payload: { subject: { id: 'bob', tenant: 'acme' }, action: 'read', resource: { type: 'documents', id: 'd1' }, context: { ip: LONDON } },
    })
  t.equal((await ask({ authorization: 'Bearer not-a-credential' })).statusCode, 401, 'a bad credential is refused, not ignored')
  t.equal(await keyCount(app, env), 0, 'the refused call wrote nothing')
  const plain = await issuer.sign({ sub: 'svc-reader', scope: 'pdp:events' }, { nowMs: clock.now() })
  t.equal((await ask({ authorization: `Bearer ${plain}` })).statusCode, 200, 'a valid credential without pdp:decide is answered')
  t.equal(await keyCount(app, env), 0, 'but does not vouch: nothing learnt')
  t.equal((await ask(CALLER.headers)).statusCode, 200)
  t.ok((await keyCount(app, env)) > 0, 'a pdp:decide credential vouches: the decision learnt')
})
