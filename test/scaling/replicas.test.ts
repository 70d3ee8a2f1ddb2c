import t, { type Test } from 'tap'
import { trustedContext } from '../helpers/build.js'
import { exitOf, listening } from '../helpers/process.js'
import { STORE_TIMEOUT_MS, isolatedPrefix, redisTarget } from '../helpers/redis.js'
import { redisClusterSkip, startRedisCluster } from '../helpers/redis-cluster.js'

const ADMIN = 'admin-token-for-tests-0123456789abcdef'
const target = await redisTarget()
const clusterSkip = redisClusterSkip()

t.test('three replicas on one Redis: what one is told, all three enforce on their next decision', { skip: target.skip }, async (t) => {
  const prefix = isolatedPrefix(t, target.url!)
  await threeReplicas(t, { REDIS_URL: target.url!, PDP_REDIS_PREFIX: prefix, PDP_STORE_TIMEOUT_MS: STORE_TIMEOUT_MS })
})

t.test('three replicas on a three-master Redis Cluster: the same, with each subject\'s state in its own slot', { skip: clusterSkip }, async (t) => {
  const cluster = await startRedisCluster(t)
  await threeReplicas(t, { PDP_REDIS_CLUSTER_NODES: cluster.env, PDP_STORE_TIMEOUT_MS: STORE_TIMEOUT_MS })
})

/** A revocation, a lockout and a grant, each made through a different replica, enforced by all three on their next decision. */
async function threeReplicas(t: Test, store: Record<string, string>) {
  const env = { ...store, PDP_ADMIN_TOKEN: ADMIN, PDP_DECISION_LOG: 'off' }
  const replicas = await Promise.all([listening(env), listening(env), listening(env)])
  t.teardown(async () => {
    for (const r of replicas) r.child.kill('SIGTERM')
    await Promise.all(replicas.map((r) => exitOf(r.child)))
  })

  const post = async (base: string, path: string, body: unknown, admin = false) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(admin ? { authorization: `Bearer ${ADMIN}` } : {}) },
      body: JSON.stringify(body),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  const decideOn = async (base: string, subject: string, action: string, resource: Record<string, unknown>, session?: Record<string, unknown>) => {
    const context = trustedContext(Date.now())
    const res = await post(base, '/decide', { subject: { id: subject, tenant: 'acme' }, action, resource, context: { ...context, session: session ?? context.session } })
    return res.body as { decision: string; reasons: string[] }
  }
  const everywhere = (subject: string, action: string, resource: Record<string, unknown>, session?: Record<string, unknown>) =>
    Promise.all(replicas.map((r) => decideOn(r.base, subject, action, resource, session)))
  const verdicts = (ds: { decision: string; reasons: string[] }[]) => ds.map((d) => `${d.decision}:${d.reasons[0]}`)

  // A revocation through the first replica.
  const carolSession = { id: 'carol-s1', authTime: Math.floor(Date.now() / 1000) - 120, amr: ['pwd', 'otp'] }
  t.same(verdicts(await everywhere('carol', 'create', { type: 'documents' }, carolSession)), Array(3).fill('allow:policy_allow'))
  t.equal((await post(replicas[0]!.base, '/admin/revocations', { sessionId: 'carol-s1' }, true)).status, 201)
  t.same(verdicts(await everywhere('carol', 'create', { type: 'documents' }, carolSession)), Array(3).fill('deny:session_revoked'), 'the revoked session is refused by all three')

  // A lockout through the second replica, from login failures.
  t.same(verdicts(await everywhere('bob', 'read', { type: 'users' })), Array(3).fill('allow:policy_allow'))
  let fired: unknown
  for (let i = 0; i < 5; i++) fired = (await post(replicas[1]!.base, '/events', { type: 'login_failure', subject: 'bob', ip: '81.2.69.142' }, true)).body.fired
  t.match(fired, [{ rule: 'brute_force', actions: ['lockout', 'notify'] }])
  t.same(verdicts(await everywhere('bob', 'read', { type: 'users' })), Array(3).fill('deny:account_locked'), 'the lockout holds on all three')

  // A just-in-time grant through the third replica.
  t.same(verdicts(await everywhere('erin', 'read', { type: 'users' })), Array(3).fill('deny:no_matching_policy'))
  const grant = await post(
    replicas[2]!.base,
    '/admin/grants',
    { subject: 'erin', role: 'manager', tenant: 'acme', durationSeconds: 600, justification: 'incident 42' },
    true,
  )
  t.equal(grant.status, 201)
  const granted = await everywhere('erin', 'read', { type: 'users' })
  t.same(
    granted.map((d) => d.decision),
    ['allow', 'allow', 'allow'],
    'the grant works on all three',
  )
  t.ok(granted.every((d) => d.reasons.includes('jit_grant')))
}
