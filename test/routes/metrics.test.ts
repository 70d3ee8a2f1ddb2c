import t from 'tap'
import { build, trustedContext } from '../helpers/build.js'

t.test('GET /metrics exposes decision, policy and process series after a few decisions', async (t) => {
  const app = await build(t)
  const context = trustedContext(Date.now())
  const ask = (payload: object) => app.inject({ method: 'POST', url: '/decide', payload })
  await ask({ subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context })
  await ask({ subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context })
  await ask({ subject: { id: 'carol', tenant: 'acme' }, action: 'read', resource: { type: 'users' }, context })
  await ask({ subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' } })
  await app.policy.reload()

  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/plain/)
  const body = res.body
  t.match(body, /pdp_decisions_total\{decision="allow",reason="policy_allow"\} 2/)
  t.match(body, /pdp_decisions_total\{decision="deny",reason="no_matching_policy"\} 1/)
  t.match(body, /pdp_decisions_total\{decision="step_up",reason="step_up_required"\} 1/)
  t.match(body, /pdp_decision_duration_seconds_count 4/)
  t.match(body, /pdp_step_up_total\{level="low"\} 1/)
  t.match(body, /pdp_risk_score_count 3/, 'risk is scored for the requests the policy allowed')
  t.match(body, /pdp_store_duration_seconds_count 4/)
  t.match(body, /pdp_policy_reloads_total\{result="success"\} 1/)
  t.match(body, /pdp_policy_rules 2\d/)
  t.match(body, /# TYPE pdp_risk_score histogram/)
  t.match(body, /# TYPE pdp_store_errors_total counter/)
  t.match(body, /# TYPE pdp_store_duration_seconds histogram/)
  t.match(body, /# TYPE pdp_step_up_total counter/)
  t.match(body, /process_cpu_user_seconds_total/)
  t.notMatch(body, /carol/, 'no subject ids in labels')
})

t.test('two apps in one process keep separate registries', async (t) => {
  const a = await build(t)
  const b = await build(t)
  await a.inject({ method: 'POST', url: '/decide', payload: { subject: { id: 'x' }, action: 'read', resource: { type: 'users' } } })
  const bm = await b.inject({ method: 'GET', url: '/metrics' })
  t.notMatch(bm.body, /pdp_decisions_total\{/, 'b saw none of a\'s decisions')
})
