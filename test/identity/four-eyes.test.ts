import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { build, manualClock, policyCopy, trustedContext } from '../helpers/build.js'
import { onBothStores } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

const ADMIN = 'admin-token-for-tests-0123456789abcdef'
const STATIC = `Bearer ${ADMIN}`
const issuer = await createIssuer()
const tokenEnv = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() }

function console_(app: FastifyInstance, clock: ReturnType<typeof manualClock>) {
  const as = async (sub: string) => `Bearer ${await issuer.sign({ sub, scope: 'pdp:admin' }, { nowMs: clock.now() })}`
  const grant = (authorization: string, payload: object) => app.inject({ method: 'POST', url: '/admin/grants', headers: { authorization }, payload })
  const approve = (authorization: string, subject: string, id: string, payload?: object) =>
    app.inject({ method: 'POST', url: `/admin/grants/${subject}/${id}/approve`, headers: { authorization }, ...(payload ? { payload } : {}) })
  const grants = async (subject: string) => (await app.inject({ method: 'GET', url: `/admin/grants/${subject}`, headers: { authorization: STATIC } })).json().grants as { status: string }[]
  const decide = async (subject: string, type: string, action: string) =>
    (
      await app.inject({
        method: 'POST',
        url: '/decide',
        payload: { subject: { id: subject, tenant: 'acme' }, action, resource: { type }, context: trustedContext(clock.now()) },
      })
    ).json().decision as string
  return { as, grant, approve, grants, decide }
}

const sensitiveRole = { subject: 'erin', role: 'admin', tenant: 'acme', durationSeconds: 300, justification: 'migration' }

await onBothStores('approval needs two different authenticated admins; names in the body count for nothing', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, ...tokenEnv, ...env }, now: clock.now })
  const { as, grant, approve, grants } = console_(app, clock)

  const named = await grant(STATIC, { ...sensitiveRole, grantedBy: 'ops-a' })
  t.equal(named.statusCode, 400, 'grantedBy is not accepted')
  t.match(named.json(), { code: 'PDP_ERR_VALIDATION', field: '/grantedBy' })
  t.same(await grants('erin'), [], 'and nothing was written')

  const byStatic = await grant(STATIC, sensitiveRole)
  t.match(byStatic.json(), { status: 'pending', grantedBy: 'admin-token' })
  const id = byStatic.json().id as string
  const claimed = await approve(STATIC, 'erin', id, { approvedBy: 'ops-b' })
  t.equal(claimed.statusCode, 400, 'approvedBy is not accepted')
  t.match(claimed.json(), { code: 'PDP_ERR_VALIDATION', field: '/approvedBy' })
  const alone = await approve(STATIC, 'erin', id)
  t.equal(alone.statusCode, 403, 'one shared secret is not two admins')
  t.match(alone.json(), { code: 'PDP_ERR_FOUR_EYES', message: /static admin token/ })
  const emptyBody = await approve(STATIC, 'erin', id, {})
  t.match(emptyBody.json(), { code: 'PDP_ERR_FOUR_EYES' }, 'with an empty body alike')
  t.match(await grants('erin'), [{ status: 'pending' }], 'still pending')

  const approved = await approve(await as('ops-b'), 'erin', id)
  t.equal(approved.statusCode, 200, 'an admin with their own JWT approves what the static token created')
  t.match(approved.json(), { status: 'active', grantedBy: 'admin-token', approvedBy: 'ops-b' })

  const byAlice = await grant(await as('alice'), { ...sensitiveRole, subject: 'frank' })
  t.match(byAlice.json(), { status: 'pending', grantedBy: 'alice' })
  const own = await approve(await as('alice'), 'frank', byAlice.json().id)
  t.equal(own.statusCode, 403, 'the creator cannot approve with another token of theirs')
  t.match(own.json(), { code: 'PDP_ERR_FOUR_EYES' })
  const forThemself = await approve(await as('frank'), 'frank', byAlice.json().id)
  t.equal(forThemself.statusCode, 403, 'the grant\'s subject cannot approve it')
  t.match(forThemself.json(), { code: 'PDP_ERR_SELF_GRANT' })
  t.match(await grants('frank'), [{ status: 'pending' }])
  t.match((await approve(await as('bob'), 'frank', byAlice.json().id)).json(), { status: 'active', grantedBy: 'alice', approvedBy: 'bob' })
})

await onBothStores('permission grants with admin-level power wait for approval', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, ...tokenEnv, ...env }, now: clock.now })
  const { as, grant, approve, decide } = console_(app, clock)
  const permission = (resourceType: string, action: string) => ({ subject: 'erin', permission: { resourceType, action }, durationSeconds: 300, justification: 'change 7' })

  const config = await grant(await as('alice'), permission('system.config', 'update'))
  t.equal(config.statusCode, 201)
  t.match(config.json(), { status: 'pending', grantedBy: 'alice' }, 'system.config update is sensitive')
  t.equal(await decide('erin', 'system.config', 'update'), 'deny', 'a pending permission grants nothing')
  for (const [type, action] of [['users', 'create'], ['users', 'update'], ['users', 'delete'], ['system.logs', 'read']] as const) {
    t.match((await grant(STATIC, permission(type, action))).json(), { status: 'pending' }, `${type} ${action} is sensitive`)
  }
  const plain = await grant(STATIC, permission('payroll', 'export'))
  t.match(plain.json(), { status: 'active' }, 'a permission outside the list is active at once')

  t.equal((await approve(await as('bob'), 'erin', config.json().id)).statusCode, 200)
  t.equal(await decide('erin', 'system.config', 'update'), 'allow', 'active once a second admin approved')
})

await onBothStores('nobody grants anything to themself', async (t, env) => {
  const clock = manualClock()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, ...tokenEnv, ...env }, now: clock.now })
  const { as, grant, grants, decide } = console_(app, clock)
  const alice = await as('alice')
  const role = await grant(alice, { subject: 'alice', role: 'manager', tenant: 'globex', durationSeconds: 60, justification: 'x' })
  t.equal(role.statusCode, 403)
  t.match(role.json(), { code: 'PDP_ERR_SELF_GRANT', field: '/subject' })
  const perm = await grant(alice, { subject: 'alice', permission: { resourceType: 'payroll', action: 'export' }, durationSeconds: 60, justification: 'x' })
  t.match(perm.json(), { statusCode: 403, code: 'PDP_ERR_SELF_GRANT' })
  t.same(await grants('alice'), [], 'nothing was written')
  t.equal(await decide('alice', 'payroll', 'export'), 'deny')
  t.equal((await grant(alice, { subject: 'erin', role: 'manager', durationSeconds: 60, justification: 'x' })).statusCode, 201, 'granting someone else works')
})

t.test('a role that confers a sensitive role or permission through the policy is sensitive too', async (t) => {
  const dir = await policyCopy(t)
  const csv = await readFile(join(dir, 'policy.csv'), 'utf8')
  await writeFile(
    join(dir, 'policy.csv'),
    `${csv}
g, superadmin, admin, *
p, auditor, *, system.logs, read, true, allow
p, helpdesk, *, users, *, true, allow
g, night-shift, helpdesk, acme
g, zed, superadmin, acme
g, yan, night-shift, acme
p, clerk, *, users, read, true, allow
`,
  )
  const clock = manualClock()
  const app = await build(t, { env: { PDP_ADMIN_TOKEN: ADMIN, PDP_POLICY_DIR: dir }, now: clock.now })
  const { grant } = console_(app, clock)
  for (const role of ['superadmin', 'auditor', 'helpdesk', 'night-shift']) {
    t.match((await grant(STATIC, { subject: 'erin', role, durationSeconds: 60, justification: 'x' })).json(), { status: 'pending' }, `${role} waits for approval`)
  }
  t.match((await grant(STATIC, { subject: 'erin', role: 'clerk', durationSeconds: 60, justification: 'x' })).json(), { status: 'active' }, 'clerk confers nothing sensitive')
})
