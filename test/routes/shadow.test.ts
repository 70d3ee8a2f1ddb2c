import t from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { auditCapture, build, manualClock, policyCopy, trustedContext } from '../helpers/build.js'

const clock = manualClock()
const ask = (subject: string, action: string, resource: Record<string, unknown>) => ({
  subject: { id: subject, tenant: 'acme' },
  action,
  resource,
  context: trustedContext(clock.now()),
})

t.test('the shadow policy is evaluated beside the active one; only differences are logged and counted', async (t) => {
  const candidate = await policyCopy(t)
  // The candidate takes document creation from employees and gives them the user directory.
  const csv = join(candidate, 'policy.csv')
  await writeFile(csv, (await readFile(csv, 'utf8')).replace('p, employee, *, documents, create, true, allow', 'p, employee, *, users, read, true, allow'))
  const capture = auditCapture()
  const app = await build(t, { env: { PDP_SHADOW_POLICY_DIR: candidate }, now: clock.now, auditStream: capture.stream })

  const create = await app.inject({ method: 'POST', url: '/decide', payload: ask('carol', 'create', { type: 'documents' }) })
  t.match(create.json(), { decision: 'allow', reasons: ['policy_allow'], policyVersion: app.policy.current.version }, 'the active verdict is the one returned')
  const users = await app.inject({ method: 'POST', url: '/decide', payload: ask('carol', 'read', { type: 'users' }) })
  t.match(users.json(), { decision: 'deny', reasons: ['no_matching_policy'] })
  const same = await app.inject({ method: 'POST', url: '/decide', payload: ask('bob', 'read', { type: 'users' }) })
  t.equal(same.json().decision, 'allow')

  const lines = capture.lines.filter((l) => l.type === 'decision')
  const shadowVersion = app.shadowPolicy!.current.version
  t.not(shadowVersion, app.policy.current.version)
  t.same(lines[0]!.shadow, { policy_version: shadowVersion, verdict: 'deny', reasons: ['no_matching_policy'] })
  t.same(lines[1]!.shadow, { policy_version: shadowVersion, verdict: 'allow', reasons: ['policy_allow'] }, 'the candidate allows, and the shared risk findings agree')
  t.equal(lines[2]!.shadow, undefined, 'agreement is not logged')
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /pdp_shadow_mismatches_total\{from="allow",to="deny"\} 1/)
  t.match(metrics, /pdp_shadow_mismatches_total\{from="deny",to="allow"\} 1/)

  // The candidate hot-reloads like the active policy: once it matches, the mismatches stop.
  await writeFile(csv, (await readFile(csv, 'utf8')).replace('p, employee, *, users, read, true, allow', 'p, employee, *, documents, create, true, allow'))
  const reloaded = await app.shadowPolicy!.reload()
  t.ok(reloaded.ok)
  await app.inject({ method: 'POST', url: '/decide', payload: ask('carol', 'create', { type: 'documents' }) })
  t.equal(capture.lines.filter((l) => l.type === 'decision').at(-1)!.shadow, undefined)
})

t.test('a candidate that does not load stops the start with file and line', async (t) => {
  const candidate = await policyCopy(t)
  await writeFile(join(candidate, 'policy.csv'), 'p, employee, *, documents\n')
  await t.rejects(build(t, { env: { PDP_SHADOW_POLICY_DIR: candidate } }), /policy\.csv:1: /)
})

t.test('without a shadow policy nothing is compared', async (t) => {
  const capture = auditCapture()
  const app = await build(t, { now: clock.now, auditStream: capture.stream })
  t.equal(app.shadowPolicy, undefined)
  await app.inject({ method: 'POST', url: '/decide', payload: ask('carol', 'create', { type: 'documents' }) })
  t.equal(capture.lines[0]!.shadow, undefined)
})
