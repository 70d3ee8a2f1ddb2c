import t from 'tap'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { buildApp } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config/config.js'
import { startTracing } from '../../src/tracing/index.js'
import { tracingSettings } from '../../src/tracing/settings.js'
import { EXAMPLE_POLICIES } from '../helpers/build.js'
import { exitOf, listening } from '../helpers/process.js'
import { SPAN_KIND_SERVER, STATUS_ERROR, otlpReceiver } from './otlp-receiver.js'

const REPORT_LOADS = `--import=${pathToFileURL(join(import.meta.dirname, 'fixtures/report-package-loads.mjs')).href}`
/** The npm packages a process run with REPORT_LOADS reported loading. */
const loadedPackages = (stderr: string) => new Set([...stderr.matchAll(/^package loaded: (\S+)$/gm)].map((m) => m[1]!))
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT_ID = '00f067aa0ba902b7'

t.test('the OpenTelemetry variables: off unless an exporter or endpoint is named, as the specification spells them', async (t) => {
  t.equal(tracingSettings({}), undefined, 'nothing set: off')
  t.equal(tracingSettings({ OTEL_SERVICE_NAME: 'pdp' }), undefined, 'a service name alone does not start tracing')
  t.same(tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp' }), { url: 'http://localhost:4318/v1/traces' })
  t.same(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }), { url: 'http://collector:4318/v1/traces' }, 'the signal path is appended')
  t.same(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/otlp/' }), { url: 'http://collector:4318/otlp/v1/traces' })
  t.same(
    tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom', OTEL_SERVICE_NAME: 'pdp-eu' }),
    { url: 'http://b:4318/custom', serviceName: 'pdp-eu' },
    'the traces endpoint is used as it is, and wins',
  )
  t.equal(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'TRUE' }), undefined, 'OTEL_SDK_DISABLED wins')
  t.equal(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_EXPORTER: 'none' }), undefined, 'exporter none wins')
  t.throws(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'zipkin' }), ConfigError)
  t.throws(() => tracingSettings({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), { message: /^OTEL_EXPORTER_OTLP_PROTOCOL: only http\/json/ })
  t.throws(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector' }), { message: /^OTEL_EXPORTER_OTLP_ENDPOINT: must be a URL/ })
  t.equal(await startTracing({}, 'test'), undefined, 'startTracing answers nothing when tracing is off')
})

t.test('the real server sends a server span per request, continuing traceparent, with the decision steps as children', async (t) => {
  const receiver = await otlpReceiver(t)
  const server = await listening({
    PDP_POLICY_DIR: EXAMPLE_POLICIES,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.base,
    OTEL_SERVICE_NAME: 'pdp-under-test',
    NODE_OPTIONS: REPORT_LOADS,
  })
  t.teardown(() => server.child.kill('SIGKILL'))
  const traced = await fetch(`${server.base}/decide`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
    body: JSON.stringify({ subject: { id: 'carol', tenant: 'acme', roles: ['editor'] }, action: 'read', resource: { type: 'documents' } }),
  })
  t.equal(traced.status, 200)
  const fresh = await fetch(`${server.base}/healthz`)
  t.equal(fresh.status, 200)
  const missing = await fetch(`${server.base}/no/such/route`)
  t.equal(missing.status, 404)
  // SIGTERM closes the app, which flushes the spans still buffered.
  server.child.kill('SIGTERM')
  const code = await exitOf(server.child)
  t.equal(code, 0, code === 0 ? 'SIGTERM: a clean exit' : server.stderr())
  t.ok(loadedPackages(server.stderr()).has('@opentelemetry/sdk-trace-base'), 'the OpenTelemetry SDK was loaded, on demand')

  const spans = receiver.spans
  t.ok(spans.every((s) => s.service === 'pdp-under-test'), 'OTEL_SERVICE_NAME names the service')
  const decide = spans.find((s) => s.name === 'POST /decide')
  if (!decide) throw new Error(`no POST /decide span among ${spans.map((s) => s.name).join(', ')}`)
  t.equal(decide.traceId, TRACE_ID, 'the caller\'s trace continues')
  t.equal(decide.parentSpanId, PARENT_ID, 'under the caller\'s span')
  t.equal(decide.kind, SPAN_KIND_SERVER)
  t.match(decide.attributes, { 'http.request.method': 'POST', 'http.route': '/decide', 'http.response.status_code': 200 })

  const children = spans.filter((s) => s.parentSpanId === decide.spanId)
  const store = children.find((s) => s.name === 'pdp.store')
  const decision = children.find((s) => s.name === 'pdp.decide')
  t.ok(store, 'the store round trip is a child span')
  t.ok(decision, 'the decision is a child span')
  t.ok(children.some((s) => s.name === 'pdp.policy'), 'the policy evaluation is a child span')
  t.ok(children.some((s) => s.name === 'pdp.risk'), 'the risk assessment is a child span')
  t.match(store?.attributes, { 'pdp.store.ok': true })
  t.match(decision?.attributes, { 'pdp.decision': String, 'pdp.reason': String })
  for (const child of children) {
    t.equal(child.traceId, TRACE_ID)
    t.ok(child.start >= decide.start && child.end <= decide.end, `${child.name} lies within the request`)
  }

  const requestLine = server.lines.find((l) => l.msg === 'request' && l.path === '/decide')
  const decisionLine = server.lines.find((l) => l.type === 'decision')
  t.equal(requestLine?.trace_id, TRACE_ID, 'the request log carries the trace id')
  t.equal(decisionLine?.trace_id, TRACE_ID, 'the decision log carries the trace id')
  t.equal(decisionLine?.verdict, decision?.attributes['pdp.decision'], 'the span says what the decision log says')

  const health = spans.find((s) => s.name === 'GET /healthz')
  const healthLine = server.lines.find((l) => l.msg === 'request' && l.path === '/healthz')
  t.ok(health, 'a request without traceparent gets a span too')
  t.equal(health?.parentSpanId, undefined, 'as the root of a new trace')
  t.match(health?.traceId, /^[0-9a-f]{32}$/)
  t.not(health?.traceId, TRACE_ID)
  t.equal(healthLine?.trace_id, health?.traceId, 'whose id the request log carries')

  const unmatched = spans.find((s) => s.attributes['http.response.status_code'] === 404)
  t.equal(unmatched?.name, 'GET', 'an unmatched path is not a span name: the method alone')
  t.equal(unmatched?.attributes['http.route'], undefined)
  t.not(unmatched?.statusCode, STATUS_ERROR, 'a 4xx is not a server error')
})

// What the default configuration does not use costs its start nothing: neither the tracing SDK nor the Redis client
// (about 100 ms of CPU) is loaded. prom-client requires @opentelemetry/api itself, for exemplars: that one is allowed.
t.test('without OpenTelemetry variables or Redis, neither the tracing SDK nor the Redis client is loaded', async (t) => {
  const server = await listening({ PDP_POLICY_DIR: EXAMPLE_POLICIES, NODE_OPTIONS: REPORT_LOADS, OTEL_SERVICE_NAME: 'not-enough' })
  t.teardown(() => server.child.kill('SIGKILL'))
  const res = await fetch(`${server.base}/decide`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` },
    body: JSON.stringify({ subject: { id: 'carol', tenant: 'acme', roles: ['editor'] }, action: 'read', resource: { type: 'documents' } }),
  })
  t.equal(res.status, 200)
  server.child.kill('SIGTERM')
  const code = await exitOf(server.child)
  t.equal(code, 0, code === 0 ? 'SIGTERM: a clean exit' : server.stderr())
  const loaded = loadedPackages(server.stderr())
  t.ok(loaded.has('fastify'), 'the report lists what the server loads')
  t.same([...loaded].filter((name) => name.startsWith('@opentelemetry/') && name !== '@opentelemetry/api'), [], 'no @opentelemetry package but the API prom-client requires')
  t.notOk(loaded.has('ioredis'), 'no Redis client')
  t.equal(server.lines.find((l) => l.type === 'decision')?.trace_id, TRACE_ID, 'traceparent still reaches the decision log')
})

t.test('the decision-step port: spans under the request\'s, nested as the steps run; plain calls outside a request', async (t) => {
  const receiver = await otlpReceiver(t)
  const tracing = await startTracing({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.base}/v1/traces` }, 'test')
  if (!tracing) throw new Error('tracing did not start')
  const app = await buildApp({ config: loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_DECISION_LOG: 'off' }), logger: false, tracing })
  // The engine runs its steps through this port (DecisionTracer in src/engine/ports.ts); a route stands in for it here.
  app.post('/steps', async () => {
    await new Promise((resolve) => setImmediate(resolve))
    const score = tracing.decisionTracer.step('policy', () => tracing.decisionTracer.step('risk', () => 42))
    t.throws(() => tracing.decisionTracer.step('risk', () => {
      throw new Error('boom')
    }), { message: 'boom' }, 'a failing step throws as it would untraced')
    return { score }
  })
  t.equal(tracing.decisionTracer.step('policy', () => 7), 7, 'outside a request the step just runs')
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address() as { port: number }
  const res = await fetch(`http://127.0.0.1:${address.port}/steps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` },
    body: JSON.stringify({ a: 1 }),
  })
  t.same(await res.json(), { score: 42 })
  const sampled = await fetch(`http://127.0.0.1:${address.port}/steps`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(sampled.status, 200)
  await app.close()

  t.notOk(receiver.spans.some((s) => s.traceId === TRACE_ID), 'a caller that does not sample is followed: nothing recorded')
  const server = receiver.spans.find((s) => s.name === 'POST /steps')
  const policy = receiver.spans.find((s) => s.name === 'pdp.policy')
  const risks = receiver.spans.filter((s) => s.name === 'pdp.risk')
  t.ok(server && policy, `server and policy spans arrived: ${receiver.spans.map((s) => s.name).join(', ')}`)
  t.equal(policy?.parentSpanId, server?.spanId, 'the step is a child of the request')
  t.equal(risks.length, 2)
  t.equal(risks.find((s) => s.statusCode !== STATUS_ERROR)?.parentSpanId, policy?.spanId, 'a step inside a step nests')
  t.equal(risks.find((s) => s.statusCode === STATUS_ERROR)?.parentSpanId, server?.spanId, 'a failed step is marked as such')
  t.equal(receiver.spans.length, 4, 'no span outside the request')
})
