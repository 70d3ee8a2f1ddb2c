import t from 'tap'
import { build } from '../helpers/build.js'

t.test('a store outage keeps the instance ready, says so in the body and in /metrics, and decisions get the store-failure verdict', async (t) => {
  const app = await build(t, { env: { REDIS_URL: 'redis://127.0.0.1:1', PDP_STORE_TIMEOUT_MS: '30' } })
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200, 'the pod stays in the Service')
  t.match(ready.json(), { status: 'ready', reasons: [], warnings: [/store unreachable/], store: { kind: 'redis', ok: false } })
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^pdp_store_up 0$/m)
  const decision = await app.inject({ method: 'POST', url: '/decide', payload: { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' } } })
  t.match(decision.json(), { decision: 'deny', reasons: ['store_unavailable'] })
})

t.test('a healthy store: ready, no warnings, pdp_store_up 1', async (t) => {
  const app = await build(t)
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.match(ready.json(), { status: 'ready', reasons: [], warnings: [], store: { kind: 'memory', ok: true } })
  t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /^pdp_store_up 1$/m)
})

t.test('while draining, readiness fails and decisions are still answered', async (t) => {
  const app = await build(t)
  app.lifecycle.draining = true
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 503)
  t.match(ready.json(), { status: 'not_ready', reasons: [/shutting down/] })
  const decision = await app.inject({ method: 'POST', url: '/decide', payload: { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' } } })
  t.equal(decision.statusCode, 200)
})
