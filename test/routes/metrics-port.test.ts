import t from 'tap'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config/config.js'
import { EXAMPLE_POLICIES } from '../helpers/build.js'

async function twoListeners(t: { teardown(fn: () => unknown): void }) {
  const app = await buildApp({ config: loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_DECISION_LOG: 'off', PDP_METRICS_PORT: '0' }), logger: false })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const metricsAddress = app.metricsServer?.address() as AddressInfo | null | undefined
  if (!metricsAddress) throw new Error('no metrics listener')
  return { app, api, metrics: `http://127.0.0.1:${metricsAddress.port}` }
}

t.test('PDP_METRICS_PORT: /metrics on its own listener and nowhere else; the API is not reachable there', async (t) => {
  const { app, api, metrics } = await twoListeners(t)
  t.not(api, metrics)
  t.equal(app.metricsServer?.timeout, app.server.timeout, 'the same bound on stalled connections as the API port')
  t.equal(app.metricsServer?.keepAliveTimeout, app.server.keepAliveTimeout)
  const decided = await fetch(`${api}/decide`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subject: { id: 'x' }, action: 'read', resource: { type: 'users' } }),
  })
  t.equal(decided.status, 200)

  const scrape = await fetch(`${metrics}/metrics`)
  t.equal(scrape.status, 200)
  t.match(scrape.headers.get('content-type'), /text\/plain/)
  const body = await scrape.text()
  t.match(body, /pdp_decisions_total\{decision="deny",reason="no_matching_policy"\} 1/, 'the app\'s own registry')
  t.match(body, /pdp_http_requests_total\{route="\/decide",method="POST",status_class="2xx"\} 1/)

  t.equal((await fetch(`${api}/metrics`)).status, 404, 'the API port no longer serves /metrics')
  for (const path of ['/admin/policy', '/decide', '/healthz', '/docs']) {
    const res = await fetch(`${metrics}${path}`)
    t.equal(res.status, 404, `${path} is not served on the metrics port`)
  }
  const admin = await fetch(`${metrics}/admin/policy/reload`, { method: 'POST' })
  t.equal(admin.status, 404)
  t.notMatch(await (await fetch(`${metrics}/metrics`)).text(), /route="\/metrics"/, 'scrapes are not counted as API requests')
})

t.test('closing the app (the drain\'s last step) closes the metrics listener too', async (t) => {
  const { app, metrics } = await twoListeners(t)
  // A kept-alive scrape connection must not hold the close up.
  t.equal((await fetch(`${metrics}/metrics`, { headers: { connection: 'keep-alive' } })).status, 200)
  await app.close()
  await t.rejects(fetch(`${metrics}/metrics`), 'nothing listens on the metrics port any more')
})

t.test('a metrics port already in use stops the start, as the main port would', async (t) => {
  const { metrics } = await twoListeners(t)
  const port = new URL(metrics).port
  const app = await buildApp({ config: loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_DECISION_LOG: 'off', PDP_METRICS_PORT: port }), logger: false })
  t.teardown(() => app.close())
  await t.rejects(app.listen({ host: '127.0.0.1', port: 0 }), { code: 'EADDRINUSE' })
})

t.test('PDP_METRICS_PORT is validated', async (t) => {
  t.equal(loadConfig({}).metricsPort, undefined, 'unset by default: /metrics on the API port')
  t.throws(() => loadConfig({ PDP_METRICS_PORT: 'nine' }), ConfigError)
  t.throws(() => loadConfig({ PDP_METRICS_PORT: '70000' }), { message: /^PDP_METRICS_PORT: must be between 0 and 65535/ })
  t.throws(() => loadConfig({ PORT: '9090', PDP_METRICS_PORT: '9090' }), { message: /^PDP_METRICS_PORT: must differ from PORT/ })
})
