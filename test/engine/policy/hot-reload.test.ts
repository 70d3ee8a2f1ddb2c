import t from 'tap'
import { once } from 'node:events'
import { appendFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { ReloadResult } from '../../../src/engine/policy/policy-source.js'
import { build, policyCopy, trustedContext } from '../../helpers/build.js'

/** Waits for the next reload event; fails the test if none comes within two seconds. */
async function nextReload(app: FastifyInstance): Promise<ReloadResult> {
  const controller = new AbortController()
  const timer = setTimeout(() => controller.abort(), 2000)
  try {
    const [result] = await once(app.policy, 'reload', { signal: controller.signal })
    return result as ReloadResult
  } finally {
    clearTimeout(timer)
  }
}

const erinReadsLogs = { subject: { id: 'erin', tenant: 'acme' }, action: 'read', resource: { type: 'system.logs' }, context: trustedContext(Date.now()) }
const carolReadsOwn = {
  subject: { id: 'carol', tenant: 'acme' },
  action: 'read',
  resource: { type: 'documents', attributes: { owner: 'carol' } },
  context: trustedContext(Date.now()),
}

async function decide(app: FastifyInstance, payload: object) {
  return (await app.inject({ method: 'POST', url: '/decide', payload })).json()
}

t.test('a good edit is applied within two seconds, without a restart', async (t) => {
  const dir = await policyCopy(t)
  const app = await build(t, { env: { PDP_POLICY_DIR: dir, PDP_RELOAD_DEBOUNCE_MS: '50' }, watchPolicies: true })
  const before = await decide(app, erinReadsLogs)
  t.equal(before.decision, 'deny')

  const reloaded = nextReload(app)
  await appendFile(join(dir, 'policy.csv'), '\ng, erin, admin, acme\n')
  const result = await reloaded
  t.ok(result.ok, 'reload succeeded')

  const after = await decide(app, erinReadsLogs)
  t.equal(after.decision, 'allow')
  t.not(after.policyVersion, before.policyVersion, 'the answer names the new policy version')
  t.equal(app.policy.status().reloads.success, 1)
})

t.test('a broken edit is rejected and the last good policy keeps answering', async (t) => {
  const dir = await policyCopy(t)
  const app = await build(t, { env: { PDP_POLICY_DIR: dir, PDP_RELOAD_DEBOUNCE_MS: '50' }, watchPolicies: true })
  const before = await decide(app, carolReadsOwn)

  const reloaded = nextReload(app)
  await writeFile(join(dir, 'policy.csv'), 'p, employee, *, documents, read\ng, carol, employee, acme\n')
  const result = await reloaded
  t.equal(result.ok, false)
  t.match(result, { error: /^policy\.csv:1: "p" takes 6 values/ })

  const after = await decide(app, carolReadsOwn)
  t.equal(after.decision, 'allow', 'old policy still answers')
  t.equal(after.policyVersion, before.policyVersion)
  const status = app.policy.status()
  t.match(status.lastError, { message: /policy\.csv:1/ })
  t.equal(status.reloads.failure, 1)
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200)
  t.match(ready.json().policy.lastError.message, /policy\.csv:1/, 'readiness reports the rejected edit')

  const fixed = nextReload(app)
  await writeFile(join(dir, 'policy.csv'), 'p, employee, *, documents, read, true, allow\ng, carol, employee, acme\n')
  t.ok((await fixed).ok, 'the next good edit is taken')
  t.equal(app.policy.status().lastError, undefined, 'and clears the error')
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
