import t from 'tap'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/config.js'
import { parseChallenge } from '../http/parse-challenge.js'
import { EXAMPLE_POLICIES, auditCapture, manualClock, policyCopy, trustedContext } from '../helpers/build.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

const ADMIN = 'explorer-admin-token-0123456789abcdef'
const auth = { authorization: `Bearer ${ADMIN}` }

interface TestLike {
  teardown(fn: () => unknown): void
}

/** A fake compiled page, so that serving is tested without running tsc here (the browser test builds the real one). */
async function assets(t: TestLike): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pdp-ui-assets-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'main.js'), 'export {}\n')
  await writeFile(join(dir, 'evil name.js'), 'not served\n')
  return dir
}

async function app(t: TestLike, env: Record<string, string> = {}, extra: { now?: () => number; assetsDir?: string } = {}): Promise<FastifyInstance> {
  const config = loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_DECISION_LOG: 'off', PDP_ADMIN_TOKEN: ADMIN, ...env })
  const built = await buildApp({ config, logger: false, ...(extra.now ? { now: extra.now } : {}), explorerAssetsDir: extra.assetsDir ?? (await assets(t)) })
  t.teardown(() => built.close())
  await built.ready()
  return built
}

const DENIED = { subject: { id: 'carol', tenant: 'acme' }, action: 'read', resource: { type: 'system.logs' } }
const STEP_UP = {
  subject: { id: 'alice', tenant: 'acme' },
  action: 'read',
  resource: { type: 'system.logs' },
  context: { ip: '8.8.8.8', device: { id: 'd-unknown', managed: false }, sensitivity: 'high' },
}

t.test('every explorer endpoint needs the admin credential', async (t) => {
  const pdp = await app(t)
  const calls: [string, string, unknown?][] = [
    ['POST', '/admin/explorer/explain', { request: DENIED }],
    ['POST', '/admin/explorer/what-if', { request: DENIED, shadow: true }],
    ['GET', '/admin/explorer/policy-files'],
    ['GET', '/admin/explorer/decisions'],
    ['GET', '/admin/explorer/decisions/some-id'],
    ['GET', '/admin/explorer/stream'],
    ['GET', '/admin/explorer/stats'],
    ['GET', '/admin/subjects/carol/devices'],
  ]
  for (const [method, url, payload] of calls) {
    const none = await pdp.inject({ method: method as 'GET', url, ...(payload ? { payload: payload as object } : {}) })
    t.equal(none.statusCode, 401, `${method} ${url} without a credential`)
    const wrong = await pdp.inject({ method: method as 'GET', url, headers: { authorization: 'Bearer not-the-token' }, ...(payload ? { payload: payload as object } : {}) })
    t.equal(wrong.statusCode, 401, `${method} ${url} with a wrong credential`)
  }
})

t.test('explain answers what /decide answers, with rules, roles and gateway answers, and learns nothing', async (t) => {
  const pdp = await app(t)
  for (const body of [DENIED, STEP_UP]) {
    const decided = (await pdp.inject({ method: 'POST', url: '/decide', payload: body })).json()
    const res = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: auth, payload: { request: body } })
    t.equal(res.statusCode, 200)
    const { result, policy } = res.json()
    t.equal(result.decision.decision, decided.decision, `${body.subject.id}: same verdict`)
    t.same(result.decision.reasons, decided.reasons, 'same reasons')
    t.same(result.decision.stepUp, decided.stepUp, 'same step-up')
    t.equal(policy.revision, decided.policyVersion)
    t.equal(result.gateways.length, 4, 'NGINX, Traefik, Caddy and Envoy')
    if (decided.decision === 'step_up') {
      t.equal(result.gateways[0].status, 401)
      const challenge = parseChallenge(result.gateways[0].headers['www-authenticate'])
      t.equal(challenge.params.error, 'insufficient_user_authentication')
      t.equal(challenge.params.acr_values, decided.stepUp.acrValues.join(' '))
      t.equal(challenge.params.max_age, String(decided.stepUp.maxAge))
      t.match(result.rules, [{ file: 'policy.csv', line: Number, text: /^p, admin, \*, system\.logs, read/ }])
      t.same(
        result.roles.map((r: { role: string; sources: string[] }) => [r.role, r.sources]),
        [
          ['admin', ['policy']],
          ['manager', ['policy']],
          ['employee', ['policy']],
        ],
      )
      t.ok(result.decision.risk.signals.length > 0)
    } else {
      t.equal(result.gateways[0].status, 403)
      t.equal(result.gateways[0].headers['x-pdp-reason'], 'no_matching_policy')
    }
  }
  const asserted = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: auth, payload: { request: { ...DENIED, subject: { id: 'zed', roles: ['manager'] } } } })
  t.match(
    asserted.json().result.roles,
    [
      { role: 'manager', sources: ['request'] },
      { role: 'employee', sources: ['request'] },
    ],
    'roles reached from an asserted role come from the request',
  )
  const granted = await pdp.inject({ method: 'POST', url: '/admin/grants', headers: auth, payload: { subject: 'zed', role: 'manager', durationSeconds: 600, justification: 'on call' } })
  t.equal(granted.statusCode, 201)
  const viaGrant = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: auth, payload: { request: { subject: { id: 'zed', tenant: 'acme' }, action: 'read', resource: { type: 'users' } } } })
  t.ok(viaGrant.json().result.decision.reasons.includes('jit_grant'), 'the grant let the policy allow')
  t.match(
    viaGrant.json().result.roles,
    [
      { role: 'manager', sources: ['grant'] },
      { role: 'employee', sources: ['grant'] },
    ],
    'roles from a just-in-time grant, and what they inherit',
  )
  const recent = (await pdp.inject({ method: 'GET', url: '/admin/explorer/decisions', headers: auth })).json()
  t.equal(recent.decisions.length, 2, 'only the two /decide calls were recorded; explaining is not a decision')
})

t.test('explaining a token\'s decision writes nothing, where /decide records the session', async (t) => {
  const issuer = await createIssuer()
  const pdp = await app(t, { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() })
  const token = await issuer.sign({ sub: 'carol', tenant: 'acme', roles: ['employee'], sid: 's-token', auth_time: Math.floor(Date.now() / 1000) - 30 })
  const body = { token, action: 'create', resource: { type: 'documents' }, context: { device: { id: 'tok-laptop', managed: true } } }
  const sessions = async () => (await pdp.inject({ method: 'GET', url: '/admin/subjects/carol/sessions', headers: auth })).json().sessions as unknown[]
  const explained = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: auth, payload: { request: body } })
  t.equal(explained.statusCode, 200)
  t.match(explained.json().result.roles, [{ role: 'employee', sources: ['policy', 'request'] }], "the token's roles count as the request's")
  t.same(await sessions(), [], 'explaining records no session')
  t.equal(explained.json().request.token, '[redacted]', 'the token is not sent back')
  t.notMatch(explained.body, token)
  t.equal((await pdp.inject({ method: 'POST', url: '/decide', payload: body })).statusCode, 200)
  for (let i = 0; i < 50 && (await sessions()).length === 0; i++) await new Promise((r) => setTimeout(r, 20))
  t.equal((await sessions()).length, 1, 'deciding the same request does')
})

t.test('a remembered decision, a pasted log line, and bad input', async (t) => {
  const capture = auditCapture()
  const config = loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_ADMIN_TOKEN: ADMIN, PDP_EXPLORER_RING: '3' })
  const pdp = await buildApp({ config, logger: false, auditStream: capture.stream, explorerAssetsDir: await assets(t) })
  t.teardown(() => pdp.close())
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push((await pdp.inject({ method: 'POST', url: '/decide', payload: { ...DENIED, resource: { type: 'documents', id: `d${i}` } } })).json().decisionId)
  const recent = (await pdp.inject({ method: 'GET', url: '/admin/explorer/decisions', headers: auth })).json()
  t.same(
    recent.decisions.map((d: { decision_id: string }) => d.decision_id),
    ids.slice(2).reverse(),
    'the ring keeps the newest PDP_EXPLORER_RING',
  )
  const gone = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: auth, payload: { decisionId: ids[0] } })
  t.equal(gone.statusCode, 404, 'an overwritten decision is gone')
  const kept = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: auth, payload: { decisionId: ids[4] } })
  t.equal(kept.statusCode, 200)
  t.match(kept.json(), { logged: { decisionId: ids[4], verdict: 'deny' }, request: { subject: { id: 'carol' } } })
  const one = await pdp.inject({ method: 'GET', url: `/admin/explorer/decisions/${ids[4]}`, headers: auth })
  t.match(one.json(), { decision_id: ids[4], verdict: 'deny' })

  const logged = capture.lines.find((l) => l.type === 'decision' && l.decision_id === ids[1])
  const pasted = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: auth, payload: { logLine: JSON.stringify(logged) } })
  t.equal(pasted.statusCode, 200, 'a line of the decision log')
  t.match(pasted.json(), { logged: { decisionId: ids[1] }, result: { decision: { decision: 'deny' } } })

  const bad: [unknown, RegExp][] = [
    [{}, /exactly one/],
    [{ request: DENIED, decisionId: ids[4] }, /exactly one/],
    [{ logLine: '{not json' }, /not valid JSON/],
    [{ logLine: '[1]' }, /not a JSON object/],
    [{ logLine: JSON.stringify({ type: 'admin', action: 'x' }) }, /not a decision line/],
    [{ logLine: JSON.stringify({ type: 'decision', decision_id: 'x', input: { action: 'read', resource: { type: 'a' } } }) }, /no subject/],
    [{ logLine: JSON.stringify({ type: 'decision', decision_id: 'x', input: { subject: { id: 'a\u0007b' }, action: 'read', resource: { type: 'a' } } }) }, /logged request's \/subject\/id/],
    [{ logLine: JSON.stringify({ type: 'decision', decision_id: 'x', input: { subject: { id: 'a' }, action: 'read', resource: [] } }) }, /logged request's \/resource/],
    [{ logLine: JSON.stringify({ type: 'decision', decision_id: 'x', input: { subject: { id: 'a', attributes: { __proto__x: 1, constructor: 1 } }, action: 'read', resource: { type: 'a' } } }) }, /constructor/],
    [{ logLine: JSON.stringify({ type: 'decision', decision_id: 'x', input: { subject: { id: 'a' }, action: 'read', resource: { type: 'a' }, context: { ip: 'nope' } } }) }, /IPv4 or IPv6/],
    [{ request: { ...DENIED, token: 'abc' } }, /exclude each other/],
    [{ request: { ...DENIED, context: { ip: 'nope' } } }, /IPv4 or IPv6/],
    [{ request: { ...DENIED, extra: 1 } }, /not a known field/],
    [{ request: DENIED, policy: 'shadow' }, /no shadow policy/],
  ]
  for (const [payload, message] of bad) {
    const res = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: auth, payload: payload as object })
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 80))
    t.match(res.json().message, message)
  }
  const notJson = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: { ...auth, 'content-type': 'application/json' }, payload: '{' })
  t.equal(notJson.statusCode, 400)
})

t.test('what-if: an edit held in memory, validated with file and line, never written', async (t) => {
  const dir = await policyCopy(t)
  const pdp = await app(t, { PDP_POLICY_DIR: dir, PDP_EXPLORER_EDIT_MAX_BYTES: '8192' })
  const before = await readFile(join(dir, 'policy.csv'), 'utf8')
  const files = (await pdp.inject({ method: 'GET', url: '/admin/explorer/policy-files', headers: auth })).json()
  t.equal(files.files['policy.csv'], before)
  t.equal(files.revision, files.activeRevision)

  const edited = `${before}\np, employee, *, system.logs, read, true, allow\n`
  const res = await pdp.inject({ method: 'POST', url: '/admin/explorer/what-if', headers: auth, payload: { request: DENIED, files: { 'policy.csv': edited } } })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.candidate.source, 'edit')
  t.not(body.candidate.revision, body.active.revision)
  t.equal(body.candidate.base, body.active.revision)
  t.equal(body.active.result.decision.decision, 'deny')
  t.not(body.candidate.result.decision.decision, 'deny', 'the added rule lets carol in (subject to risk)')
  const fields = body.differences.map((d: { field: string }) => d.field)
  t.ok(fields.includes('decision') && fields.includes('matchedRules'), fields.join(','))
  t.match(body.candidate.result.rules, [{ file: 'policy.csv', line: before.split('\n').length + 1, text: 'p, employee, *, system.logs, read, true, allow' }])
  t.equal(await readFile(join(dir, 'policy.csv'), 'utf8'), before, 'nothing written to disk')
  t.equal((await pdp.inject({ method: 'GET', url: '/admin/policy', headers: auth })).json().activeRevision, body.active.revision, 'the active policy is unchanged')

  const broken = await pdp.inject({ method: 'POST', url: '/admin/explorer/what-if', headers: auth, payload: { request: DENIED, files: { 'policy.csv': `${before}\np, employee\n` } } })
  t.equal(broken.statusCode, 400)
  t.match(broken.json(), { field: '/files/policy.csv', message: new RegExp(`policy\\.csv:${before.split('\n').length + 1}: `) })
  const riskBroken = await pdp.inject({ method: 'POST', url: '/admin/explorer/what-if', headers: auth, payload: { request: DENIED, files: { 'risk.yaml': 'weights: [' } } })
  t.equal(riskBroken.statusCode, 400)
  t.match(riskBroken.json().message, /risk\.yaml/)
  for (const name of ['model.conf', 'policy.csv', 'request.yaml', 'routes.yaml', 'risk.yaml', 'identity.yaml', 'response.yaml']) {
    for (const text of ['', '\u0000[[[{{', 'a: &a [*a, *a]\n', '[request_definition]\nr = sub\n[matchers]\nm = (((', 'x'.repeat(4000)]) {
      const r = await pdp.inject({ method: 'POST', url: '/admin/explorer/what-if', headers: auth, payload: { request: DENIED, files: { [name]: text } } })
      t.ok(r.statusCode === 200 || r.statusCode === 400, `${name} ← ${JSON.stringify(text.slice(0, 20))}: ${r.statusCode}`)
    }
  }
  const cases: [unknown, RegExp][] = [
    [{ request: DENIED, files: { 'secrets.txt': 'x' } }, /not a policy file/],
    [{ request: DENIED, files: { '../policy.csv': 'x' } }, /not a policy file/],
    [{ request: DENIED, files: {} }, /names no policy file/],
    [{ request: DENIED, files: { 'policy.csv': 'x'.repeat(9000) } }, /at most 8192/],
    [{ request: DENIED }, /either \/shadow/],
    [{ request: DENIED, shadow: true, files: { 'policy.csv': before } }, /either \/shadow/],
    [{ request: DENIED, shadow: true }, /no shadow policy/],
  ]
  for (const [payload, message] of cases) {
    const r = await pdp.inject({ method: 'POST', url: '/admin/explorer/what-if', headers: auth, payload: payload as object })
    t.equal(r.statusCode, 400, JSON.stringify(payload).slice(0, 80))
    t.match(r.json().message, message)
  }
})

t.test('what-if against the shadow policy directory', async (t) => {
  const shadow = await policyCopy(t)
  await writeFile(join(shadow, 'policy.csv'), `${await readFile(join(shadow, 'policy.csv'), 'utf8')}\np, employee, *, system.logs, read, true, allow\n`)
  const pdp = await app(t, { PDP_SHADOW_POLICY_DIR: shadow })
  const res = await pdp.inject({ method: 'POST', url: '/admin/explorer/what-if', headers: auth, payload: { request: DENIED, shadow: true } })
  t.equal(res.statusCode, 200)
  t.equal(res.json().candidate.source, 'shadow')
  t.ok(res.json().differences.some((d: { field: string }) => d.field === 'decision'))
  const explained = await pdp.inject({ method: 'POST', url: '/admin/explorer/explain', headers: auth, payload: { request: DENIED, policy: 'shadow' } })
  t.match(explained.json(), { policy: { role: 'shadow' }, result: { rules: [{ text: 'p, employee, *, system.logs, read, true, allow' }] } })
})

t.test('stats count decisions per minute by verdict and reason; devices come from sessions', async (t) => {
  const clock = manualClock()
  // With PDP_DECIDE_AUTH=token the caller's credential (the admin token holds pdp:decide) vouches for the subject, so the session is recorded.
  const pdp = await app(t, { PDP_EXPLORER_STATS_MINUTES: '3', PDP_DECIDE_AUTH: 'token' }, { now: clock.now })
  await pdp.inject({ method: 'POST', url: '/decide', headers: auth, payload: DENIED })
  clock.advance(60_000)
  await pdp.inject({ method: 'POST', url: '/decide', headers: auth, payload: DENIED })
  const context = trustedContext(clock.now(), 'laptop-7')
  const decided = await pdp.inject({ method: 'POST', url: '/decide', headers: auth, payload: { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context } })
  t.equal(decided.json().decision, 'allow')
  const stats = (await pdp.inject({ method: 'GET', url: '/admin/explorer/stats', headers: auth })).json()
  t.equal(stats.minutes.length, 3)
  t.same(stats.minutes.map((m: { verdicts: Record<string, number> }) => m.verdicts), [{}, { deny: 1 }, { deny: 1, allow: 1 }])
  t.equal(stats.minutes[2].reasons.no_matching_policy, 1)
  t.same(stats.streams, { open: 0, max: 8 })
  clock.advance(10 * 60_000)
  const later = (await pdp.inject({ method: 'GET', url: '/admin/explorer/stats', headers: auth })).json()
  t.same(later.minutes.map((m: { verdicts: Record<string, number> }) => m.verdicts), [{}, {}, {}], 'old minutes fall out of the window')

  // The session is written after the answer (off the hot path): wait until it shows.
  let devices: { devices: { id: string; sessions: string[] }[] } = { devices: [] }
  for (let i = 0; i < 50 && devices.devices.length === 0; i++) {
    devices = (await pdp.inject({ method: 'GET', url: '/admin/subjects/carol/devices', headers: auth })).json()
    if (devices.devices.length === 0) await new Promise((r) => setTimeout(r, 20))
  }
  t.match(devices.devices, [{ id: 'laptop-7', sessions: ['s-1'] }])
  const bad = await pdp.inject({ method: 'GET', url: `/admin/subjects/${'x'.repeat(300)}/devices`, headers: auth })
  t.equal(bad.statusCode, 400)
})

/** Reads server-sent events from a real connection until `until` says enough. */
function readEvents(url: string, headers: Record<string, string>, until: (text: string) => boolean): Promise<{ status: number; text: string; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      let text = ''
      let settled = false
      const ended = new Promise<void>((done) => res.on('close', () => done()))
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        text += chunk
        if (!settled && until(text)) {
          settled = true
          resolve({ status: res.statusCode!, text, ended })
        }
      })
      res.on('end', () => {
        if (!settled) resolve({ status: res.statusCode!, text, ended })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('the live stream: filtered events, heartbeats, a bound on streams, closed with the server', async (t) => {
  const config = loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_DECISION_LOG: 'off', PDP_ADMIN_TOKEN: ADMIN, PDP_EXPLORER_STREAM_MAX: '1', PDP_EXPLORER_HEARTBEAT_MS: '100' })
  const pdp = await buildApp({ config, logger: false, explorerAssetsDir: await assets(t) })
  let closed = false
  t.teardown(() => (closed ? undefined : pdp.close()))
  await pdp.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(pdp.server.address() as AddressInfo).port}`
  await pdp.inject({ method: 'POST', url: '/decide', payload: { ...DENIED, subject: { id: 'dave', tenant: 'globex' } } })

  const first = readEvents(`${base}/admin/explorer/stream?subject=carol`, auth, (text) => text.includes('event: decision') && text.includes(': heartbeat'))
  // Wait until the stream is open, then fill the one slot's worth of traffic.
  for (let i = 0; i < 100 && (await pdp.inject({ method: 'GET', url: '/admin/explorer/stats', headers: auth })).json().streams.open === 0; i++) await new Promise((r) => setTimeout(r, 10))
  const second = await pdp.inject({ method: 'GET', url: '/admin/explorer/stream', headers: auth })
  t.equal(second.statusCode, 429, 'PDP_EXPLORER_STREAM_MAX streams at most')
  await pdp.inject({ method: 'POST', url: '/decide', payload: DENIED })
  const got = await first
  t.equal(got.status, 200)
  t.match(got.text, /event: decision\ndata: \{[^\n]*"subject":"carol"/)
  t.notMatch(got.text, /"subject":"dave"/, 'the filter applies to the backlog and to new decisions')
  const stats = (await pdp.inject({ method: 'GET', url: '/admin/explorer/stats', headers: auth })).json()
  t.equal(stats.streams.open, 1)
  closed = true
  await pdp.close()
  await got.ended
  t.pass('closing the server ends the stream')

  const draining = await buildApp({ config, logger: false, explorerAssetsDir: await assets(t) })
  t.teardown(() => draining.close())
  await draining.listen({ host: '127.0.0.1', port: 0 })
  const open = await readEvents(`http://127.0.0.1:${(draining.server.address() as AddressInfo).port}/admin/explorer/stream`, auth, (text) => text.includes(': heartbeat'))
  draining.lifecycle.draining = true
  await open.ended
  t.pass('a draining server ends its streams at the next heartbeat, so that clients reconnect elsewhere')

  const badFilter = await buildApp({ config, logger: false, explorerAssetsDir: await assets(t) })
  t.teardown(() => badFilter.close())
  const res = await badFilter.inject({ method: 'GET', url: '/admin/explorer/stream?verdict=maybe', headers: auth })
  t.equal(res.statusCode, 400)
  const unknown = await badFilter.inject({ method: 'GET', url: '/admin/explorer/decisions?colour=red', headers: auth })
  t.equal(unknown.statusCode, 400)
})

t.test('the page: static, with a strict CSP, content types and revalidation', async (t) => {
  const pdp = await app(t)
  const page = await pdp.inject({ method: 'GET', url: '/ui' })
  t.equal(page.statusCode, 200, 'the sign-in page needs no credential')
  t.match(page.headers['content-type'], /^text\/html/)
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /default-src 'self'/)
  t.match(csp, /script-src 'self'(;|$)/)
  t.match(csp, /style-src 'self'(;|$)/)
  t.notMatch(csp, /unsafe-inline|unsafe-eval|https?:/, 'no inline code, no other origin')
  t.notMatch(page.body, /<script>|style=|<style/, 'no inline script or style')
  t.match(page.body, /id="sign-in-form"/)
  t.equal(page.headers['cache-control'], 'no-cache')
  t.equal(page.headers['set-cookie'], undefined)
  const again = await pdp.inject({ method: 'GET', url: '/ui', headers: { 'if-none-match': String(page.headers.etag) } })
  t.equal(again.statusCode, 304)
  const script = await pdp.inject({ method: 'GET', url: '/ui/assets/main.js' })
  t.match(script.headers['content-type'], /^text\/javascript/)
  t.match((await pdp.inject({ method: 'GET', url: '/ui/assets/explorer.css' })).headers['content-type'], /^text\/css/)
  const schema = await pdp.inject({ method: 'GET', url: '/ui/assets/decide-schema.json' })
  t.match(schema.json(), { type: 'object', required: ['action', 'resource'] })
  for (const name of ['evil%20name.js', '..%2Fpackage.json', 'nope.js', 'x'.repeat(100)]) {
    const res = await pdp.inject({ method: 'GET', url: `/ui/assets/${name}` })
    t.ok(res.statusCode === 404 || res.statusCode === 400, `${name.slice(0, 20)}: ${res.statusCode}`)
  }
  const empty = await mkdtemp(join(tmpdir(), 'pdp-ui-none-'))
  t.teardown(() => rm(empty, { recursive: true, force: true }))
  const unbuilt = await app(t, {}, { assetsDir: empty })
  t.equal((await unbuilt.inject({ method: 'GET', url: '/ui' })).statusCode, 503, 'an unbuilt page says so')
})
