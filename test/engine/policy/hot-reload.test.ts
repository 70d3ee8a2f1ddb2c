import t from 'tap'
import { appendFile, cp, mkdir, mkdtemp, open, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { loadPolicyBundle } from '../../../src/engine/policy/bundle.js'
import { POLICY_FILE_NAMES } from '../../../src/engine/policy/policy-snapshot.js'
import type { ReloadResult } from '../../../src/engine/policy/policy-source.js'
import { build, EXAMPLE_POLICIES, policyCopy, trustedContext } from '../../helpers/build.js'
import { deadline } from '../../helpers/deadline.js'

/** Polls until `probe` returns something; generous, because the machine may be busy. Fails the test past the deadline. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = deadline(60_000)): Promise<T> {
  const end = Date.now() + deadlineMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`)
    await sleep(100)
  }
}

/** Every reload attempt the source reports, in order. */
function recordReloads(app: FastifyInstance): ReloadResult[] {
  const results: ReloadResult[] = []
  app.policy.on('reload', (result) => results.push(result))
  return results
}

/** Settling and polling shortened so that tests are quick; a test that needs a real window sets its own. */
const FAST = { PDP_RELOAD_DEBOUNCE_MS: '50', PDP_RELOAD_SETTLE_MS: '100', PDP_RELOAD_POLL_MS: '200' }

const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef-XYZ'
const now = Date.now()
const erinReadsLogs = { subject: { id: 'erin', tenant: 'acme' }, action: 'read', resource: { type: 'system.logs' }, context: trustedContext(now) }
const carolReadsOwn = {
  subject: { id: 'carol', tenant: 'acme' },
  action: 'read',
  resource: { type: 'documents', attributes: { owner: 'carol' } },
  context: trustedContext(now),
}
const carolDeletesOwn = { ...carolReadsOwn, action: 'delete' }
const erinReadsOwn = { ...carolReadsOwn, subject: { id: 'erin', tenant: 'acme' }, resource: { type: 'documents', attributes: { owner: 'erin' } } }

async function decide(app: FastifyInstance, payload: object): Promise<{ decision: string; policyVersion: string }> {
  return (await app.inject({ method: 'POST', url: '/decide', payload })).json()
}

const decisionIs = (app: FastifyInstance, payload: object, decision: string) => async () => ((await decide(app, payload)).decision === decision ? true : undefined)

async function readyz(app: FastifyInstance) {
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  return { statusCode: res.statusCode, body: res.json() }
}

const watching = (app: FastifyInstance) => async () => (app.policy.status().watch.state === 'watching' ? true : undefined)

t.test('a good edit is applied without a restart', async (t) => {
  const dir = await policyCopy(t)
  const app = await build(t, { env: { PDP_POLICY_DIR: dir, ...FAST }, watchPolicies: true })
  const before = await decide(app, erinReadsLogs)
  t.equal(before.decision, 'deny')

  await appendFile(join(dir, 'policy.csv'), '\ng, erin, admin, acme\n')
  await until('the edit to apply', decisionIs(app, erinReadsLogs, 'allow'))
  const after = await decide(app, erinReadsLogs)
  t.not(after.policyVersion, before.policyVersion, 'the answer names the new policy version')
  t.equal(app.policy.status().reloads.success, 1)
})

t.test('a broken edit is rejected and the last good policy keeps answering', async (t) => {
  const dir = await policyCopy(t)
  const app = await build(t, { env: { PDP_POLICY_DIR: dir, ...FAST }, watchPolicies: true })
  const before = await decide(app, carolReadsOwn)

  await writeFile(join(dir, 'policy.csv'), 'p, employee, *, documents, read\ng, carol, employee, acme\n')
  await until('the rejection', async () => (app.policy.status().reloads.failure > 0 ? true : undefined))
  const status = app.policy.status()
  t.match(status.lastError, { message: /^policy\.csv:1: "p" takes 6 values/ })
  t.equal(status.reloads.failure, 1)

  const after = await decide(app, carolReadsOwn)
  t.equal(after.decision, 'allow', 'old policy still answers')
  t.equal(after.policyVersion, before.policyVersion)
  const ready = await readyz(app)
  t.equal(ready.statusCode, 200, 'a rejected edit does not take the instance out of service')
  t.match(ready.body.policy.lastError.message, /policy\.csv:1/, 'readiness reports the rejected edit')

  await writeFile(join(dir, 'policy.csv'), 'p, employee, *, documents, read, true, allow\ng, carol, employee, acme\n')
  await until('the fix to apply', async () => (app.policy.status().reloads.success > 0 ? true : undefined))
  t.equal(app.policy.status().lastError, undefined, 'the next good edit clears the error')
})

t.test('concurrent reloads share one load; decisions during a reload keep answering', async (t) => {
  const dir = await policyCopy(t)
  const app = await build(t, { env: { PDP_POLICY_DIR: dir } })
  const reloads = [app.policy.reload(), app.policy.reload(), app.policy.reload()]
  const decisions = Array.from({ length: 20 }, () => decide(app, carolReadsOwn))
  const results = await Promise.all(reloads)
  t.same(results[0], results[1], 'one shared result')
  for (const d of await Promise.all(decisions)) t.equal(d.decision, 'allow')
})

t.test('a policy.csv rewritten by `cat >` in two writes 1.5 s apart is never served half-written', async (t) => {
  const dir = await policyCopy(t)
  const csv = join(dir, 'policy.csv')
  const deny = 'p, employee, acme, documents, delete, true, deny\n'
  const base = `${await readFile(csv, 'utf8')}\n${deny}`
  await writeFile(csv, base)
  // The window is far longer than the pause, so that a slow machine stretching the pause cannot make it pass.
  const env = { PDP_POLICY_DIR: dir, PDP_RELOAD_DEBOUNCE_MS: '50', PDP_RELOAD_SETTLE_MS: '6000', PDP_RELOAD_POLL_MS: '200' }
  const app = await build(t, { env, watchPolicies: true })
  const reloads = recordReloads(app)
  const first = app.policy.status().activeRevision
  t.equal((await decide(app, carolDeletesOwn)).decision, 'deny', 'the deny rule is in force')

  // The new file keeps the deny rule and adds erin; the first write stops at the line before the rule.
  const next = base.replace(deny, `g, erin, employee, acme\n${deny}`)
  const cut = next.indexOf(deny)
  const handle = await open(csv, 'w')
  const wrong: string[] = []
  let seenPending = false
  try {
    await handle.write(next.slice(0, cut))
    const gapEnd = Date.now() + 1500
    while (Date.now() < gapEnd) {
      const answer = await decide(app, carolDeletesOwn)
      const status = app.policy.status()
      // The first wrong moment is enough to tell.
      if (wrong.length === 0 && answer.decision !== 'deny') wrong.push(`carol's delete was ${answer.decision} under ${answer.policyVersion}`)
      if (wrong.length === 0 && status.activeRevision !== first) wrong.push(`revision ${status.activeRevision} became active during the pause`)
      if (status.watch.pendingSince !== undefined) seenPending = true
      await sleep(100)
    }
    await handle.write(next.slice(cut))
  } finally {
    await handle.close()
  }
  t.same(wrong, [], 'the deny rule was in force throughout the pause')
  t.ok(seenPending, 'the watcher saw the half-written file and held it back')

  await until('the complete file to apply', decisionIs(app, erinReadsOwn, 'allow'))
  const complete = (await loadPolicyBundle(dir)).version
  t.equal(app.policy.status().activeRevision, complete)
  t.equal((await decide(app, carolDeletesOwn)).decision, 'deny', 'and the deny rule came with it')
  t.same(reloads, [{ ok: true, version: complete, changed: true }], 'the only activation was the complete file')
})

t.test('a file published by atomic rename is loaded once; the temporary and editor files never start a load', async (t) => {
  const dir = await policyCopy(t)
  const app = await build(t, { env: { PDP_POLICY_DIR: dir, ...FAST }, watchPolicies: true })
  const reloads = recordReloads(app)
  await until('the watcher', watching(app))

  const csv = join(dir, 'policy.csv')
  const next = `${await readFile(csv, 'utf8')}\ng, erin, admin, acme\n`
  const temporary = join(dir, '.policy.csv.tmp')
  const handle = await open(temporary, 'w')
  try {
    await handle.write(next.slice(0, 200))
    await writeFile(join(dir, 'policy.csv~'), 'p, erin, *, system.logs, read, true, allow\n')
    await writeFile(join(dir, '.policy.csv.swp'), 'p, erin, *, system.logs, read, true, allow\n')
    // Longer than debounce + settle + poll: a watcher that counted these files would have loaded by now.
    await sleep(1000)
    await handle.write(next.slice(200))
  } finally {
    await handle.close()
  }
  t.same(reloads, [], 'nothing was loaded while the temporary file was written')
  t.equal((await decide(app, erinReadsLogs)).decision, 'deny')

  await rename(temporary, csv)
  await until('the renamed file to apply', decisionIs(app, erinReadsLogs, 'allow'))
  t.same(reloads, [{ ok: true, version: (await loadPolicyBundle(dir)).version, changed: true }], 'one load, of the published file')
})

t.test('a ConfigMap volume update (the ..data link swapped) is loaded once', async (t) => {
  // The layout the kubelet writes: a timestamped directory, a ..data link to it, and each file a link through ..data.
  const dir = await mkdtemp(join(tmpdir(), 'pdp-configmap-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // The bundled policy's files (it has no request.yaml, one of the optional ones).
  const names = (await readdir(EXAMPLE_POLICIES)).filter((name) => POLICY_FILE_NAMES.includes(name))
  const publish = async (version: string, edit: (csv: string) => string) => {
    const target = join(dir, `..${version}`)
    await mkdir(target)
    for (const name of names) {
      const text = await readFile(join(EXAMPLE_POLICIES, name), 'utf8')
      await writeFile(join(target, name), name === 'policy.csv' ? edit(text) : text)
    }
    await symlink(`..${version}`, join(dir, '..data_tmp'))
    await rename(join(dir, '..data_tmp'), join(dir, '..data'))
  }
  await publish('2026_03_01_12_00_00.000000001', (csv) => csv)
  for (const name of names) await symlink(join('..data', name), join(dir, name))

  const app = await build(t, { env: { PDP_POLICY_DIR: dir, ...FAST }, watchPolicies: true })
  const reloads = recordReloads(app)
  await until('the watcher', watching(app))
  t.equal((await decide(app, erinReadsLogs)).decision, 'deny')

  await publish('2026_03_01_12_05_00.000000002', (csv) => `${csv}\ng, erin, admin, acme\n`)
  await rm(join(dir, '..2026_03_01_12_00_00.000000001'), { recursive: true })
  await until('the new ConfigMap data to apply', decisionIs(app, erinReadsLogs, 'allow'))
  t.same(reloads, [{ ok: true, version: (await loadPolicyBundle(dir)).version, changed: true }])
})

t.test('a removed and recreated directory is reported not ready meanwhile, then followed again', async (t) => {
  const dir = await policyCopy(t)
  const app = await build(t, { env: { PDP_POLICY_DIR: dir, PDP_ADMIN_TOKEN: ADMIN_TOKEN, ...FAST }, watchPolicies: true })
  await until('the watcher', watching(app))
  const original = await readFile(join(dir, 'policy.csv'), 'utf8')

  await rm(dir, { recursive: true })
  const down = await until('readiness to fail', async () => {
    const ready = await readyz(app)
    return ready.statusCode === 503 ? ready : undefined
  })
  t.match(down.body, { status: 'not_ready', reasons: [/^policy missing: policy directory .+ is missing \(ENOENT\); revision [0-9a-f]{16} keeps answering$/] })
  const admin = await app.inject({ method: 'GET', url: '/admin/policy', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  t.match(admin.json(), { watch: { state: 'missing', reason: /is missing/, since: /^\d{4}-/ } }, 'the policy status shows the watcher')
  t.equal((await decide(app, carolReadsOwn)).decision, 'allow', 'the last good policy keeps answering')

  await mkdir(dir)
  await cp(EXAMPLE_POLICIES, dir, { recursive: true })
  await appendFile(join(dir, 'policy.csv'), '\ng, erin, admin, acme\n')
  await until('the recreated directory to apply', decisionIs(app, erinReadsLogs, 'allow'))
  await until('readiness to return', async () => ((await readyz(app)).statusCode === 200 ? true : undefined))
  t.equal(app.policy.status().watch.state, 'watching')

  await writeFile(join(dir, 'policy.csv'), original)
  await until('a later edit, without SIGHUP', decisionIs(app, erinReadsLogs, 'deny'))
})

t.test('a directory renamed into the place of the watched one is followed', async (t) => {
  const dir = await policyCopy(t)
  const app = await build(t, { env: { PDP_POLICY_DIR: dir, ...FAST }, watchPolicies: true })
  await until('the watcher', watching(app))

  const staged = `${dir}.new`
  t.teardown(() => rm(`${dir}.old`, { recursive: true, force: true }))
  await cp(EXAMPLE_POLICIES, staged, { recursive: true })
  await appendFile(join(staged, 'policy.csv'), '\ng, erin, admin, acme\n')
  await rename(dir, `${dir}.old`)
  await rename(staged, dir)
  await until('the new directory to apply', decisionIs(app, erinReadsLogs, 'allow'))

  await appendFile(join(dir, 'policy.csv'), '\np, admin, acme, system.logs, read, true, deny\n')
  await until('an edit in the new directory', decisionIs(app, erinReadsLogs, 'deny'))
  t.equal(app.policy.status().watch.state, 'watching')
})

t.test('a Casbin model with its own request fields: request.yaml maps them, and edits to it are validated and hot-reloaded', async (t) => {
  const dir = await policyCopy(t)
  await writeFile(
    join(dir, 'model.conf'),
    [
      '[request_definition]',
      'r = user, dom, thing, action',
      '[policy_definition]',
      'p = role, dom, thing, action',
      '[role_definition]',
      'g = _, _, _',
      '[policy_effect]',
      'e = some(where (p.eft == allow))',
      '[matchers]',
      'm = g(r.user, p.role, r.dom) && r.dom == p.dom && \\',
      '    r.thing == p.thing && r.action == p.action',
      '',
    ].join('\n'),
  )
  await writeFile(join(dir, 'policy.csv'), 'p, reader, acme, documents, read\ng, erin, reader, acme\n')
  // dom and action are not named: they receive what their names suggest (the domain and the action).
  await writeFile(join(dir, 'request.yaml'), '# which request value each request field receives\nuser: subject.id\nthing: resource.type\n')
  const app = await build(t, { env: { PDP_POLICY_DIR: dir, ...FAST }, watchPolicies: true })
  const erinReads = { subject: { id: 'erin', tenant: 'acme' }, action: 'read', resource: { type: 'documents', id: 'doc-1' }, context: trustedContext(now) }
  t.equal((await decide(app, erinReads)).decision, 'allow', 'the mapped model decides')
  t.equal((await decide(app, { ...erinReads, action: 'update' })).decision, 'deny')
  t.equal((await decide(app, { ...erinReads, subject: { id: 'erin', tenant: 'globex' } })).decision, 'deny', 'dom is the tenant')

  await writeFile(join(dir, 'request.yaml'), 'user: subject.id\nthing: resource.id\n')
  await until('the new mapping to apply', decisionIs(app, erinReads, 'deny'))
  t.equal((await decide(app, { ...erinReads, resource: { type: 'x', id: 'documents' } })).decision, 'allow', 'thing is now the resource id')

  await writeFile(join(dir, 'request.yaml'), 'user: subject.id\nthing: resource.colour\n')
  await until('the rejection', async () => (app.policy.status().reloads.failure > 0 ? true : undefined))
  t.match(app.policy.status().lastError, { message: /^request\.yaml:2: thing: must be a request value: .* \(got "resource\.colour"\)/ })
  t.equal((await decide(app, { ...erinReads, resource: { type: 'x', id: 'documents' } })).decision, 'allow', 'the last good mapping keeps answering')

  await rm(join(dir, 'request.yaml'))
  await until('the second rejection', async () => (app.policy.status().reloads.failure > 1 ? true : undefined))
  t.match(app.policy.status().lastError, { message: /^model\.conf:2: request field "r\.user" is not one the PDP supplies/ }, 'without request.yaml the fields must be the PDP\'s own')
})
