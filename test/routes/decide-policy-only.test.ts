import t from 'tap'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/config.js'
import { EXAMPLE_POLICIES, manualClock } from '../helpers/build.js'

// bob (a manager in acme) reads the user directory from Sydney on a phone never seen, with a two-hour-old password login.
const risky = (nowMs: number) => ({
  subject: { id: 'bob', tenant: 'acme' },
  action: 'read',
  resource: { type: 'users', id: 'carol' },
  context: { ip: '103.86.96.100', device: { id: 'unknown-phone' }, session: { id: 's-9', authTime: Math.floor(nowMs / 1000) - 7200, amr: ['pwd'] } },
})

async function app(t: { teardown(fn: () => unknown): void }, policyOnly: boolean) {
  const clock = manualClock()
  const config = loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_DECISION_LOG: 'off' })
  const built = await buildApp({ config, logger: false, now: clock.now, policyOnly })
  t.teardown(() => built.close())
  return { app: built, clock }
}

t.test('policyOnly decides on the policy alone: no risk assessment, no step-up', async (t) => {
  const { app: full, clock } = await app(t, false)
  const withRisk = (await full.inject({ method: 'POST', url: '/decide', payload: risky(clock.now()) })).json()
  t.equal(withRisk.decision, 'step_up', 'the full service asks the unknown phone to step up')

  const { app: bare } = await app(t, true)
  const policyOnly = (await bare.inject({ method: 'POST', url: '/decide', payload: risky(clock.now()) })).json()
  t.equal(policyOnly.decision, 'allow')
  t.same(policyOnly.reasons, ['policy_allow'])
  t.notOk('risk' in policyOnly, 'no risk assessment in the answer')
})

t.test('policyOnly still denies what the policy denies', async (t) => {
  const { app: bare, clock } = await app(t, true)
  const denied = (await bare.inject({ method: 'POST', url: '/decide', payload: { ...risky(clock.now()), action: 'delete' } })).json()
  t.equal(denied.decision, 'deny')
  t.same(denied.reasons, ['no_matching_policy'])
})
