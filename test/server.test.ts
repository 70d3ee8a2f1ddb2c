import t from 'tap'
import { appendFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { partialGeoipData, policyCopy, trustedContext } from './helpers/build.js'
import { exitOf, start } from './helpers/process.js'

t.test('a bad variable stops start-up with one line naming it', async (t) => {
  const p = await start({ PORT: 'eighty' })
  t.equal(await exitOf(p.child), 1)
  t.equal(p.stderr().trim(), 'pdp: cannot start: PORT: must be an integer, got "eighty"')
})

t.test('a broken policy stops start-up naming file and line', async (t) => {
  const dir = await policyCopy(t)
  await writeFile(join(dir, 'policy.csv'), 'p, employee, *, documents, read, true, allow\np, admin, *, users\n')
  const p = await start({ PDP_POLICY_DIR: dir })
  t.equal(await exitOf(p.child), 1)
  t.match(p.stderr().trim(), /^pdp: cannot start: policy\.csv:2: "p" takes 6 values/)
  t.equal(p.stderr().trim().split('\n').length, 1, 'one line')
})

t.test("GEODATADIR: geoip-lite's data directory is read from there, checked at start", async (t) => {
  // Without its IPv6 ranges the directory is not geoip-lite's: the start stops, naming the file it looked for there.
  const { dir, complete } = await partialGeoipData(t)
  const p = await start({ GEODATADIR: dir })
  t.equal(await exitOf(p.child), 1)
  t.ok(p.stderr().startsWith(`pdp: cannot start: geoip-lite's data file ${join(dir, 'geoip-city6.dat')} is unusable: ENOENT`), p.stderr())
  t.equal(p.stderr().trim().split('\n').length, 1, 'one line')

  await complete()
  const served = await start({ GEODATADIR: dir })
  t.teardown(() => {
    if (served.child.exitCode === null) served.child.kill('SIGKILL')
  })
  await served.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
  served.child.kill('SIGTERM')
  t.equal(await exitOf(served.child), 0, 'a complete directory serves')
})

t.test('serves, reloads on SIGHUP, logs one line per request without secrets, exits 0 on SIGTERM', async (t) => {
  const dir = await policyCopy(t)
  const p = await start({ PDP_POLICY_DIR: dir, PDP_RELOAD_DEBOUNCE_MS: '60000', PDP_RELOAD_SETTLE_MS: '600000' })
  t.teardown(() => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL')
  })
  const listening = await p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
  const base = String(listening.msg).replace('Server listening at ', '')

  const ask = async () => {
    const res = await fetch(`${base}/decide`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer very-secret-token' },
      body: JSON.stringify({ subject: { id: 'erin', tenant: 'acme' }, action: 'read', resource: { type: 'system.logs' }, context: trustedContext(Date.now()) }),
    })
    return (await res.json()) as { decision: string }
  }
  t.equal((await ask()).decision, 'deny')

  await appendFile(join(dir, 'policy.csv'), '\ng, erin, admin, acme\n')
  const reloaded = p.waitFor((l) => l.msg === 'policy reloaded')
  p.child.kill('SIGHUP')
  await reloaded
  t.equal((await ask()).decision, 'allow', 'SIGHUP applied the edit (the watcher would wait ten minutes for it to settle)')

  let seen = 0
  await p.waitFor((l) => l.msg === 'request' && ++seen === 2)
  const requestLines = p.lines.filter((l) => l.msg === 'request')
  t.equal(requestLines.length, 2, 'one line per request')
  t.match(requestLines[0], { method: 'POST', path: '/decide', statusCode: 200 })
  t.notMatch(JSON.stringify(p.lines), /very-secret-token/, 'the token never reaches the log')

  p.child.kill('SIGTERM')
  t.equal(await exitOf(p.child), 0)
  t.ok(p.lines.some((l) => l.msg === 'shutting down: finishing in-flight requests'))
})

t.test('exposureWarning: only unauthenticated /decide bound beyond loopback', async (t) => {
  const { exposureWarning } = await import('../src/config/exposure.js')
  for (const [host, decideAuth, warned] of [
    ['0.0.0.0', 'none', true],
    ['10.1.2.3', 'none', true],
    ['::', 'none', true],
    ['0.0.0.0', 'token', false],
    ['127.0.0.1', 'none', false],
    ['127.8.9.10', 'none', false],
    ['::1', 'none', false],
    ['[::1]', 'none', false],
    ['localhost', 'none', false],
  ] as const) {
    t.equal(exposureWarning({ host, decideAuth }) !== undefined, warned, `${host} ${decideAuth}`)
  }
})

// One process for what only a real process shows: the start-up warning, the log schema and trace ids on stdout,
// and the drain on SIGTERM (each spawn costs seconds of CPU, so they share one).
t.test('the real process: warns when exposed, one log schema with trace ids, drains on SIGTERM and exits 0', async (t) => {
  const p = await start({ HOST: '0.0.0.0', PDP_DRAIN_DELAY_MS: '3000' })
  t.teardown(() => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL')
  })
  const listening = await p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
  const port = new URL(String(listening.msg).replace('Server listening at ', '')).port
  const base = `http://127.0.0.1:${port}`
  const warning = await p.waitFor((l) => typeof l.msg === 'string' && l.msg.includes('accepts unauthenticated callers'))
  t.equal(warning.level, 'warn', 'bound to 0.0.0.0 with PDP_DECIDE_AUTH=none, it says so')

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const decide = (headers: Record<string, string> = {}) =>
    fetch(`${base}/decide`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' } }),
    })
  await decide({ traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-request-id': 'req-trace-1' })
  const request = await p.waitFor((l) => l.msg === 'request' && l.request_id === 'req-trace-1')
  const decision = await p.waitFor((l) => l.type === 'decision' && l.request_id === 'req-trace-1')
  t.match(request, { trace_id: traceId }, 'the request line carries the trace id')
  t.match(decision, { trace_id: traceId }, 'so does the decision line')

  t.equal((await fetch(`${base}/readyz`)).status, 200)
  const draining = p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('shutting down: readiness fails'))
  p.child.kill('SIGTERM')
  await draining
  t.equal((await fetch(`${base}/readyz`)).status, 503, 'load balancers are told to stop sending')
  t.equal((await decide()).status, 200, 'a request during PDP_DRAIN_DELAY_MS is still answered')
  t.equal(await exitOf(p.child), 0)
  t.ok(p.lines.some((l) => l.msg === 'shutting down: finishing in-flight requests'), 'the close came after the delay')

  for (const line of p.lines) {
    const what = String(line.msg ?? line.type)
    t.type(line.level, 'string', `level of "${what}"`)
    t.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `time of "${what}"`)
    t.notOk('reqId' in line, `"${what}": no second name for the request id`)
  }
})
