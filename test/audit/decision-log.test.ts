import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { buildApp } from '../../src/app.js'
import { createAuditLog } from '../../src/audit/audit-log.js'
import { loadConfig } from '../../src/config/config.js'
import { CALLER, EXAMPLE_POLICIES, auditCapture, build, trustedContext } from '../helpers/build.js'
import { until } from '../helpers/deadline.js'

/** A directory of the test's own for log files, removed after it. */
async function logDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pdp-log-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('every decision is one audit line, field by field', async (t) => {
  const capture = auditCapture()
  const now = Date.parse('2026-03-01T12:00:00Z')
  const app = await build(t, { env: { PDP_DECISION_LOG_REDACT: 'subject.attributes.ssn,resource.attributes.salary' }, now: () => now, auditStream: capture.stream })
  const res = await app.inject({
    method: 'POST',
    url: '/decide',
    headers: { 'x-request-id': 'req-42', authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.secret.sig' },
    payload: {
      subject: { id: 'bob', tenant: 'acme', attributes: { team: 'sales', ssn: '123-45-6789', apiToken: 'tok-abc' } },
      action: 'read',
      resource: { type: 'documents', id: 'd1', attributes: { team: 'sales', salary: 100000 } },
      context: { ip: '81.2.69.142', ...trustedContext(now) },
    },
  })
  const decision = res.json()
  t.equal(capture.lines.length, 1)
  const line = capture.lines[0]!
  t.equal(line.type, 'decision')
  t.equal(line.v, 1)
  t.match(line.time, /^\d{4}-\d\d-\d\dT/)
  t.equal(line.decision_id, decision.decisionId)
  t.equal(line.request_id, 'req-42')
  t.equal(line.source, 'http')
  t.equal(line.subject, 'bob')
  t.equal(line.tenant, 'acme')
  t.equal(line.action, 'read')
  t.same(line.resource, { type: 'documents', id: 'd1' })
  t.equal(line.verdict, 'allow')
  t.same(line.reasons, ['policy_allow'])
  t.equal(line.policy_version, decision.policyVersion)
  t.type(line.latency_ms, 'number')
  t.match(line.risk, { score: 0, level: 'minimal', sensitivity: 'medium', signals: [{ name: 'deviceTrust' }, { name: 'location', value: { country: 'GB' } }] })
  t.same(line.masked, ['subject.attributes.ssn', 'subject.attributes.apiToken', 'resource.attributes.salary'])
  t.match(line.input, {
    subject: { id: 'bob', attributes: { team: 'sales', ssn: '[redacted]', apiToken: '[redacted]' } },
    resource: { attributes: { team: 'sales', salary: '[redacted]' } },
    context: { ip: '81.2.69.142' },
  })
  const text = JSON.stringify(capture.lines)
  t.notMatch(text, /123-45-6789|tok-abc|100000|eyJhbGci|secret\.sig/, 'no secret, redacted value or token in the stream')
})

t.test('PDP_DECISION_LOG=off writes nothing; a file destination receives lines', async (t) => {
  const dir = await logDir(t)
  const file = join(dir, 'sub', 'decisions.log')
  const app = await build(t, { env: { PDP_DECISION_LOG: file } })
  await app.inject({ method: 'POST', url: '/decide', payload: { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context: trustedContext(Date.now()) } })
  await app.close()
  const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
  t.equal(lines.length, 1)
  t.match(lines[0], { type: 'decision', subject: 'carol', verdict: 'allow' })
})

t.test('a file destination writes in batches: a lone line arrives without a close, and every line written before close is on disk after it', async (t) => {
  const dir = await logDir(t)
  const file = join(dir, 'decisions.log')
  const app = await build(t, { env: { PDP_DECISION_LOG: file } })
  const decide = (id: string) =>
    app.inject({ method: 'POST', url: '/decide', payload: { subject: { id, tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context: trustedContext(Date.now()) } })
  const lines = async () => (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { decision_id: string; subject: string })

  // Far less than a batch: written by the periodic flush, the app still running.
  const first = (await decide('lone')).json().decisionId
  await until(async () => (await lines()).some((l) => l.decision_id === first), 'the lone decision line on disk')

  // Many batches' worth, the last ones still waiting when the app closes.
  const ids = [first]
  for (let i = 0; i < 300; i++) ids.push((await decide(`user-${i}`)).json().decisionId)
  await app.close()
  const written = await lines()
  t.same(written.map((l) => l.decision_id), ids, 'every decision once, in order, each line valid JSON')
  t.equal(written.at(-1)!.subject, 'user-299')
})

t.test('a decision log file that cannot be written stops the start with one line naming the variable', async (t) => {
  const dir = await logDir(t)
  // A path below a regular file can never be created, whoever runs the test (root included).
  await writeFile(join(dir, 'plain-file'), '')
  await t.rejects(build(t, { env: { PDP_DECISION_LOG: join(dir, 'plain-file', 'decisions.log') } }), /^PDP_DECISION_LOG: cannot append to .* \((ENOTDIR|EEXIST)\)$/)
})

t.test('credential-like keys are redacted wherever they are in the logged request, without configuration', async (t) => {
  const capture = auditCapture()
  const now = Date.parse('2026-03-01T12:00:00Z')
  const app = await build(t, { now: () => now, auditStream: capture.stream })
  // Each value is unique, so that the whole stream can be searched for it.
  const secretKeys = [
    'pwd', 'pin', 'jwt', 'bearer', 'otp', 'password', 'PASSWORD', 'userPassword', 'passwd', 'secret', 'clientSecret', 'token',
    'refresh_token', 'apiKey', 'api_key', 'X-Api-Key', 'credential', 'credentials', 'cookie', 'sessionCookie', 'session_cookie',
    'authorization', 'Authorization', 'privateKey', 'private_key', 'ssn', 'SSN', 'userPIN', 'PINCode', 'pin_code', 'otpCode', 'cvv',
  ]
  const readable = { team: 'sales', owner: 'bob', pinned: 'yes', footprint: 'small', classname: 'c1', spinner: 'on', opinion: 'fine' }
  const secrets = Object.fromEntries(secretKeys.map((k, i) => [k, `s3cr3t-${i}-value`]))
  const body = {
    subject: { id: 'bob', tenant: 'acme', attributes: { ...readable, ...secrets } },
    action: 'read',
    resource: { type: 'documents', id: 'd1', attributes: { ...readable, nested: { pwd: 'nested-pwd-value', list: [{ otp: 'listed-otp-value' }] } } },
    context: { ip: '81.2.69.142', ...trustedContext(now), device: { id: 'laptop-1', managed: true, deviceToken: 'device-token-value' } },
  }
  for (const url of ['/decide', '/decide/batch']) {
    capture.lines.length = 0
    const payload = url === '/decide' ? body : { subject: body.subject, context: body.context, items: [{ action: body.action, resource: body.resource }] }
    const res = await app.inject({ method: 'POST', url, payload })
    t.equal(res.statusCode, 200, url)
    const line = capture.lines.find((l) => l.type === 'decision') as { input: Record<string, any>; masked: string[] }
    const attributes = line.input.subject.attributes
    for (const key of secretKeys) {
      t.equal(attributes[key], '[redacted]', `${url}: subject.attributes.${key}`)
      t.ok(line.masked.includes(`subject.attributes.${key}`), `${url}: ${key} listed in masked`)
    }
    t.match(attributes, readable, `${url}: other keys stay readable`)
    t.match(line.input.resource.attributes, { ...readable, nested: { pwd: '[redacted]', list: [{ otp: '[redacted]' }] } }, `${url}: nested keys`)
    t.equal(line.input.context.device.deviceToken, '[redacted]', `${url}: device posture attributes`)
    const text = JSON.stringify(capture.lines)
    t.notMatch(text, /s3cr3t-|nested-pwd-value|listed-otp-value|device-token-value/, `${url}: no secret value in the stream`)
  }
})

t.test('a decision log on a full disk: decisions go on, one error line says so, the metrics show it, and close still ends', { skip: existsSync('/dev/full') ? false : '/dev/full is missing (Linux only)' }, async (t) => {
  const serverLines: { level: number; msg: string; code?: string }[] = []
  const config = loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_DECISION_LOG: '/dev/full', ...CALLER.env })
  const app = await buildApp({ config, logger: { level: 'info', stream: { write: (line: string) => void serverLines.push(JSON.parse(line)) } } })
  let closed = false
  t.teardown(() => (closed ? undefined : app.close()))
  // About 1 KiB a line: far more than one 8 KiB batch, so the destination is written (and fails) many times.
  const statuses = new Set<number>()
  for (let i = 0; i < 200; i++) {
    const res = await app.inject({ method: 'POST', url: '/decide', headers: CALLER.headers, payload: { subject: { id: `user-${i}`, tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context: trustedContext(Date.now()) } })
    statuses.add(res.statusCode)
  }
  await until(() => app.audit.health().writeErrors >= 2, 'two failed writes')
  t.same([...statuses], [200], 'every decision answered')
  const failures = serverLines.filter((l) => l.msg.startsWith('decision log: a write failed'))
  t.equal(failures.length, 1, 'one error line for the outage, not one per retry')
  t.match(failures[0], { level: 50, code: 'ENOSPC' })
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /^pdp_decision_log_failing 1$/m)
  t.ok(Number(/^pdp_decision_log_write_errors_total (\d+)$/m.exec(metrics)?.[1]) >= 2, 'failed writes counted')
  t.match(metrics, /^pdp_decision_log_dropped_lines_total 0$/m)
  await app.close()
  closed = true
  t.pass('close ended')
})

t.test('a decision log that stays failing keeps at most 64 MiB waiting, drops and counts the rest, and still closes', { skip: existsSync('/dev/full') ? false : '/dev/full is missing (Linux only)' }, async (t) => {
  const told: number[] = []
  const log = createAuditLog({ destination: '/dev/full', redactPaths: [], onDrop: (dropped) => told.push(dropped) })
  // 80 lines of 1 MiB against a bound of 64 MiB: whatever is in flight aside, at least 16 cannot be kept.
  const pad = 'x'.repeat(1024 * 1024)
  for (let i = 0; i < 80; i++) log.event('admin', { action: `line-${i}`, pad })
  await until(() => log.health().dropped >= 16 && log.health().failing, 'the lines past the bound dropped, and the writes failing')
  const { dropped } = log.health()
  t.ok(dropped <= 80 - 60, `the lines within the bound are kept, not dropped (${dropped} dropped)`)
  t.same(told, [1], 'told once, at the first drop')
  await log.close()
  t.same(told, [1, dropped], 'and the total at close')
})

t.test('a destination that fails and then takes lines again: lines written during the outage are kept and written, one line each way', async (t) => {
  const dir = await logDir(t)
  // A real pino destination (sonic-boom) on a device that refuses every write, then pointed at a file, as a disk freed.
  const destination = pino.destination({ dest: existsSync('/dev/full') ? '/dev/full' : join(dir, 'missing', 'x'), sync: false })
  const told: string[] = []
  const log = createAuditLog({
    destination: 'stdout',
    redactPaths: [],
    stream: destination,
    onWriteError: (error) => told.push(`error ${error.code}`),
    onRecovered: (failed) => told.push(`recovered after ${failed}`),
  })
  log.event('admin', { action: 'during-outage-1' })
  await until(() => log.health().failing, 'the first failed write')
  log.event('admin', { action: 'during-outage-2' })
  await until(() => log.health().writeErrors >= 2, 'the retry to fail too')
  const file = join(dir, 'decisions.log')
  destination.reopen(file)
  log.event('admin', { action: 'after' })
  await until(() => !log.health().failing, 'a good write')
  await log.close()
  // A destination handed in is its owner's to close.
  await new Promise((resolve) => {
    destination.once('close', resolve)
    destination.end()
  })
  const actions = (await readFile(file, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { action: string }).action)
  t.same(actions, ['during-outage-1', 'during-outage-2', 'after'], 'nothing lost, in order')
  t.equal(told.length, 2)
  t.match(told[0], /^error E/)
  t.match(told[1], /^recovered after [2-9]\d*$/)
  t.match(log.health(), { failing: false, dropped: 0 })
})
