import t from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/config.js'
import { build, policyCopy, trustedContext } from '../helpers/build.js'

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
  t.match(body, /pdp_policy_evaluator\{engine="indexed"\} 1/)
  t.match(body, /pdp_policy_evaluator\{engine="casbin"\} 0/)
  t.match(body, /# TYPE pdp_risk_score histogram/)
  t.match(body, /# TYPE pdp_store_errors_total counter/)
  t.match(body, /# TYPE pdp_store_duration_seconds histogram/)
  t.match(body, /# TYPE pdp_step_up_total counter/)
  t.match(body, /process_cpu_user_seconds_total/)
  t.notMatch(body, /carol/, 'no subject ids in labels')

  // Prometheus' own linter: names, types and suffixes as Prometheus expects them.
  if (spawnSync('promtool', ['--version'], { stdio: 'ignore' }).error !== undefined) {
    const message = "promtool is not installed (Debian's prometheus package; .ci/run installs it)"
    if (process.env.CI === 'true') t.fail(message)
    else t.skip(message, () => {})
  } else {
    const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8', timeout: 60_000 })
    t.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`)
  }
})

t.test('two apps in one process keep separate registries', async (t) => {
  const a = await build(t)
  const b = await build(t)
  await a.inject({ method: 'POST', url: '/decide', payload: { subject: { id: 'x' }, action: 'read', resource: { type: 'users' } } })
  const bm = await b.inject({ method: 'GET', url: '/metrics' })
  t.notMatch(bm.body, /pdp_decisions_total\{/, 'b saw none of a\'s decisions')
})

t.test('a model the indexed evaluator cannot take: Casbin answers, the gauge says so and one warning names the reason', async (t) => {
  const dir = await policyCopy(t)
  const modelPath = join(dir, 'model.conf')
  const model = await readFile(modelPath, 'utf8')
  await writeFile(modelPath, model.replace('r.obj.type == p.obj', 'keyMatch4(r.obj.type, p.obj)'))
  const logs: Record<string, unknown>[] = []
  const stream = { write: (line: string) => void logs.push(JSON.parse(line)) }
  const app = await buildApp({ config: loadConfig({ PDP_POLICY_DIR: dir, PDP_DECISION_LOG: 'off' }), logger: { level: 'warn', stream } })
  t.teardown(() => app.close())
  await app.ready()

  const warnings = () => logs.filter((l) => l.level === 40 && String(l.msg).includes('not the indexed evaluator'))
  t.equal(warnings().length, 1, 'warned at start-up')
  t.match(warnings()[0], { reason: /keyMatch4\(\.\.\.\)/, policyVersion: /^[0-9a-f]{16}$/ })
  await app.policy.reload()
  t.equal(warnings().length, 1, 'an unchanged reload does not repeat it')

  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(body, /pdp_policy_evaluator\{engine="casbin"\} 1/)
  t.match(body, /pdp_policy_evaluator\{engine="indexed"\} 0/)
  t.match(body, /pdp_policy_evaluator_fallback\{reason="matcher_term"\} 1/, 'the reason, by its code')
  t.match(body, /pdp_policy_evaluator_fallback\{reason="effect"\} 0/)
  const res = await app.inject({ method: 'POST', url: '/decide', payload: { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context: trustedContext(Date.now()) } })
  t.equal(res.json().decision, 'allow', 'the fallback decides')

  await writeFile(modelPath, model)
  t.match(await app.policy.reload(), { ok: true, changed: true })
  t.equal(warnings().length, 1, 'no warning once the indexed evaluator takes the policy')
  const indexed = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(indexed, /pdp_policy_evaluator\{engine="indexed"\} 1/)
  t.notMatch(indexed, /pdp_policy_evaluator_fallback\{[^}]*\} 1/, 'no fallback reason')
})

t.test('HTTP requests are counted by route pattern and status class, never by raw path; build info names the version', async (t) => {
  const app = await build(t)
  await app.inject({ method: 'POST', url: '/decide', payload: { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' } } })
  await app.inject({ method: 'POST', url: '/decide', payload: { subject: {} } })
  await app.inject({ method: 'GET', url: '/no/such/path/carol-secret' })
  await app.inject({ method: 'GET', url: '/authz/envoy/api/documents/d-carol' })
  await app.inject({ method: 'PROPFIND', url: '/authz/envoy/x' })
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(body, /pdp_http_requests_total\{route="\/decide",method="POST",status_class="2xx"\} 1/)
  t.match(body, /pdp_http_requests_total\{route="\/decide",method="POST",status_class="4xx"\} 1/)
  t.match(body, /pdp_http_requests_total\{route="unmatched",method="GET",status_class="4xx"\} 1/)
  t.match(body, /pdp_http_requests_total\{route="\/authz\/envoy\/\*",method="GET",status_class="4xx"\} 1/)
  t.match(body, /pdp_http_requests_total\{route="\/authz\/envoy\/\*",method="other",status_class="4xx"\} 1/)
  t.match(body, /pdp_http_request_duration_seconds_count\{route="\/decide"\} 2/)
  t.notMatch(body, /carol/, 'no raw path or id reaches a label')
  t.match(body, /pdp_build_info\{version="\d+\.\d+\.\d+",node="v\d+/)
})
