import t from 'tap'
import { appendFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { policyCopy, trustedContext } from './helpers/build.js'
import { exitOf, start } from './helpers/process.js'

t.test('a bad variable stops start-up with one line naming it', async (t) => {
  const p = start({ PORT: 'eighty' })
  t.equal(await exitOf(p.child), 1)
  t.equal(p.stderr().trim(), 'pdp: cannot start: PORT: must be an integer, got "eighty"')
})

t.test('a broken policy stops start-up naming file and line', async (t) => {
  const dir = await policyCopy(t)
  await writeFile(join(dir, 'policy.csv'), 'p, employee, *, documents, read, true, allow\np, admin, *, users\n')
  const p = start({ PDP_POLICY_DIR: dir })
  t.equal(await exitOf(p.child), 1)
  t.match(p.stderr().trim(), /^pdp: cannot start: policy\.csv:2: "p" takes 6 values/)
  t.equal(p.stderr().trim().split('\n').length, 1, 'one line')
})

t.test('serves, reloads on SIGHUP, logs one line per request without secrets, exits 0 on SIGTERM', async (t) => {
  const dir = await policyCopy(t)
  const p = start({ PDP_POLICY_DIR: dir, PDP_RELOAD_DEBOUNCE_MS: '60000', PDP_RELOAD_SETTLE_MS: '600000' })
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

t.test('bound beyond loopback with unauthenticated /decide, the server says so at start; with caller auth it does not', async (t) => {
  for (const [env, warned] of [
    [{ HOST: '0.0.0.0' }, true],
    [{ HOST: '0.0.0.0', PDP_DECIDE_AUTH: 'token', PDP_ADMIN_TOKEN: 'x'.repeat(32) }, false],
    [{ HOST: '127.0.0.1' }, false],
  ] as const) {
    const p = start(env)
    t.teardown(() => {
      if (p.child.exitCode === null) p.child.kill('SIGKILL')
    })
    await p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
    p.child.kill('SIGTERM')
    t.equal(await exitOf(p.child), 0)
    const warning = p.lines.find((l) => typeof l.msg === 'string' && l.msg.includes('accepts unauthenticated callers'))
    t.equal(warning !== undefined, warned, JSON.stringify(env))
    if (warning) t.equal(warning.level, 'warn', 'a warning')
  }
})

t.test('SIGTERM: readiness fails at once, requests are served through PDP_DRAIN_DELAY_MS, then the process exits 0', async (t) => {
  const p = start({ PDP_DRAIN_DELAY_MS: '3000' })
  t.teardown(() => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL')
  })
  const listening = await p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
  const base = String(listening.msg).replace('Server listening at ', '')
  t.equal((await fetch(`${base}/readyz`)).status, 200)
  const agent = await fetch(`${base}/healthz`)
  t.equal(agent.status, 200)
  const draining = p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('shutting down: readiness fails'))
  p.child.kill('SIGTERM')
  await draining
  const ready = await fetch(`${base}/readyz`)
  t.equal(ready.status, 503, 'load balancers are told to stop sending')
  const decision = await fetch(`${base}/decide`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' } }),
  })
  t.equal(decision.status, 200, 'a request during the drain delay is still answered')
  t.equal(await exitOf(p.child), 0)
  t.ok(p.lines.some((l) => l.msg === 'shutting down: finishing in-flight requests'), 'the close came after the delay')
})

t.test('one log schema on stdout: string level, ISO time, request_id; a traceparent\'s trace id reaches the request line and the decision line', async (t) => {
  const p = start({})
  t.teardown(() => {
    if (p.child.exitCode === null) p.child.kill('SIGKILL')
  })
  const listening = await p.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at'))
  const base = String(listening.msg).replace('Server listening at ', '')
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  await fetch(`${base}/decide`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-request-id': 'req-trace-1' },
    body: JSON.stringify({ subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' } }),
  })
  const request = await p.waitFor((l) => l.msg === 'request')
  const decision = await p.waitFor((l) => l.type === 'decision')
  t.match(request, { request_id: 'req-trace-1', trace_id: traceId })
  t.match(decision, { request_id: 'req-trace-1', trace_id: traceId })
  p.child.kill('SIGTERM')
  t.equal(await exitOf(p.child), 0)
  for (const line of p.lines) {
    t.type(line.level, 'string', `level of "${String(line.msg ?? line.type)}"`)
    t.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `time of "${String(line.msg ?? line.type)}"`)
    t.notOk('reqId' in line, 'no second name for the request id')
  }
})
