import t from 'tap'
import { auditCapture, build } from '../../helpers/build.js'

const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef-XYZ'

t.test('the control plane refuses everything when no credential is configured', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/admin/policy', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  t.equal(res.statusCode, 403)
  t.match(res.json(), { code: 'PDP_ERR_FORBIDDEN', message: /disabled/ })
})

t.test('the static admin token opens it; anything else is 401', async (t) => {
  const capture = auditCapture()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN_TOKEN }, auditStream: capture.stream })
  const none = await app.inject({ method: 'GET', url: '/admin/policy' })
  t.equal(none.statusCode, 401)
  t.equal(none.headers['www-authenticate'], 'Bearer realm="pdp"')
  for (const header of [`Bearer ${ADMIN_TOKEN}x`, `Bearer ${ADMIN_TOKEN.slice(1)}`, `Basic ${ADMIN_TOKEN}`, 'Bearer', `bearer  ${'a'.repeat(5000)}`]) {
    const res = await app.inject({ method: 'GET', url: '/admin/policy', headers: { authorization: header } })
    t.equal(res.statusCode, 401, header.slice(0, 20))
    t.notMatch(res.body, ADMIN_TOKEN.slice(5, 20), 'the token is never echoed')
  }
  const ok = await app.inject({ method: 'GET', url: '/admin/policy', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  t.equal(ok.statusCode, 200)
  t.match(ok.json(), { activeRevision: /^[0-9a-f]{16}$/, engine: /./, reloads: { success: 0, failure: 0 }, watch: { state: 'off' } })

  const reload = await app.inject({ method: 'POST', url: '/admin/policy/reload', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  t.equal(reload.statusCode, 200)
  t.match(reload.json(), { ok: true, changed: false, status: { reloads: { success: 1 } } })
  t.match(capture.lines.find((l) => l.type === 'admin'), { action: 'policy_reload', caller: 'admin-token', ok: true })
  t.notMatch(JSON.stringify(capture.lines), ADMIN_TOKEN)
})

t.test('a short admin token is refused at start without echoing it', async (t) => {
  const { loadConfig } = await import('../../../src/config/config.js')
  t.throws(() => loadConfig({ PDP_ADMIN_TOKEN: 'short-secret' }), { message: 'PDP_ADMIN_TOKEN: must be at least 32 characters long' })
})
