import t from 'tap'
import { Cluster } from 'ioredis'
import { assemblePdp } from '../../src/compose.js'
import { loadPolicyBundle } from '../../src/engine/policy/bundle.js'
import { riskKeys } from '../../src/engine/risk/keys.js'
import { identityKeys } from '../../src/identity/keys.js'
import { responseKeys } from '../../src/response/keys.js'
import { RedisStateStore } from '../../src/store/redis-store.js'
import { StoreUnavailableError } from '../../src/store/state-store.js'
import { build, EXAMPLE_POLICIES, trustedContext } from '../helpers/build.js'
import { redisClusterSkip, startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js'
import { deadline } from '../helpers/deadline.js'
import { testPrefix } from '../helpers/redis.js'
import { stateStoreContract } from './contract.js'

const skip = redisClusterSkip()

/** Generous: three servers, the PDP and tap share two cores with other work. */
/** Far above a busy machine's pause; the stalled-node test still sees its batches time out. */
const TIMEOUT_MS = deadline(5_000)

async function connected(t: { teardown(fn: () => unknown): void }, cluster: RedisCluster, prefix = testPrefix()) {
  const store = await RedisStateStore.connect({ clusterNodes: cluster.nodes, prefix, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 10_000 })
  t.teardown(() => store.close())
  return store
}

/** A plain cluster client, to ask the servers themselves (CLUSTER KEYSLOT) rather than the driver. */
async function admin(t: { teardown(fn: () => unknown): void }, cluster: RedisCluster): Promise<Cluster> {
  const client = new Cluster(cluster.nodes, { lazyConnect: true })
  await client.connect()
  t.teardown(() => client.quit())
  return client
}

/**
 * Records, for each batch the store runs, the keys (as Redis sees them, prefixed) of every script call it sends: wraps
 * the client's sendCommand and the batches' exec (a batch sends all its script calls before its first await, so they
 * belong to that exec).
 */
function recordScripts(store: RedisStateStore) {
  const client = store.client as Cluster
  const send = client.sendCommand.bind(client)
  const execs: string[][][] = []
  let current: string[][] | undefined
  client.sendCommand = (command, ...rest) => {
    // EVAL is only the same call sent again, with the script, to a node that did not have it yet.
    if (command.name === 'evalsha') {
      if (!current) throw new Error('a script call outside a batch')
      current.push(command.args.slice(2, 2 + Number(command.args[1])).map(String))
    }
    return send(command, ...rest)
  }
  const batch = store.batch.bind(store)
  store.batch = () => {
    const b = batch()
    const exec = b.exec.bind(b)
    b.exec = () => {
      current = []
      execs.push(current)
      try {
        return exec()
      } finally {
        current = undefined
      }
    }
    return b
  }
  return execs
}

t.test('RedisStateStore on a three-master Redis Cluster', { skip }, async (t) => {
  const cluster = await startRedisCluster(t)

  t.test('contract', async (t) => {
    stateStoreContract(t, async () => ({ store: await connected(t, cluster) }))
  })

  t.test('a subject\'s, an address\'s and a token\'s keys each share one slot, whatever the prefix', async (t) => {
    const client = await admin(t, cluster)
    const slot = async (key: string) => Number(await client.cluster('KEYSLOT', key))
    const prefix = 'pdp:'
    const subject = [
      riskKeys.device('alice:x', 'laptop-1'),
      riskKeys.lastLocation('alice:x'),
      riskKeys.countries('alice:x'),
      riskKeys.behaviour('alice:x'),
      riskKeys.hours('alice:x'),
      riskKeys.resourceTypes('alice:x'),
      riskKeys.minute('alice:x', 29_000_000),
      identityKeys.subjectNotBefore('alice:x'),
      identityKeys.session('alice:x', 's-1'),
      identityKeys.sessionIndex('alice:x'),
      identityKeys.grants('alice:x'),
      responseKeys.lock('alice:x'),
      responseKeys.freeze('alice:x'),
      responseKeys.stepUp('alice:x'),
      responseKeys.window('brute_force', 'alice:x'),
      responseKeys.fired('brute_force', 'alice:x'),
    ]
    const subjectSlots = new Set(await Promise.all(subject.map((k) => slot(prefix + k))))
    t.equal(subjectSlots.size, 1, 'all of one subject\'s keys in one slot')
    const address = [responseKeys.ip('81.2.69.142'), responseKeys.window('spray', '81.2.69.142'), identityKeys.authFailures('81.2.69.142', 0)]
    t.equal(new Set(await Promise.all(address.map((k) => slot(prefix + k)))).size, 1, 'an address\'s keys in one slot')
    t.not(await slot(prefix + identityKeys.revokedJti('jti-1')), await slot(prefix + identityKeys.revokedJti('jti-2')), 'tokens spread over slots')
    t.equal(await slot(`other:${riskKeys.countries('alice:x')}`), [...subjectSlots][0], 'the prefix does not move the slot')
    t.equal(await slot(identityKeys.grants('')), await slot(riskKeys.countries('')), 'an empty id still tags its keys')
    // An id holding braces cannot open or close a tag of its own.
    t.equal(await slot(riskKeys.countries('{bob}')), await slot(identityKeys.grants('{bob}')))
    t.not(await slot(riskKeys.countries('{bob}')), await slot(riskKeys.countries('bob')))
  })

  t.test('a decision sends one script per slot it touches: the subject\'s, the session\'s, the address\'s', async (t) => {
    const store = await connected(t, cluster)
    const client = await admin(t, cluster)
    const execs = recordScripts(store)
    const bundle = await loadPolicyBundle(EXAMPLE_POLICIES)
    const pdp = assemblePdp({ policy: { current: bundle }, now: Date.now, defaultTenant: 'default', store, geo: { lookup: () => undefined } })
    const request = {
      subject: { id: 'alice', roles: ['employee'], tenant: 'acme' },
      action: 'create',
      resource: { type: 'documents' },
      context: { ...trustedContext(Date.now()), ip: '81.2.69.142' },
    }
    for (let round = 0; round < 2; round++) {
      execs.length = 0
      const decision = await pdp.decide(request, { callerTrusted: true })
      t.equal(decision.decision, 'allow')
      const calls = execs[0]!
      const slotsOfCalls = await Promise.all(calls.map(async (keys) => new Set(await Promise.all(keys.map(async (k) => Number(await client.cluster('KEYSLOT', k)))))))
      t.ok(slotsOfCalls.every((slots) => slots.size === 1), 'each script call stays in one slot')
      const slots = slotsOfCalls.map((s) => [...s][0])
      t.equal(new Set(slots).size, calls.length, 'no slot gets two script calls')
      t.equal(calls.length, 3, `round ${round}: the subject, the session id and the address`)
      const subjectCalls = calls.filter((keys) => keys.some((k) => k.includes('{alice}')))
      t.equal(subjectCalls.length, 1, 'all the subject\'s state in one script: read and updated atomically')
      t.ok(subjectCalls[0]!.every((k) => k.includes('{alice}')), 'and nothing else in it')
    }
    // The writes made after the answer (activity, learning) are batches of their own, also one script per slot.
    await new Promise((resolve) => setTimeout(resolve, 50))
    for (const calls of execs) {
      const slots = await Promise.all(calls.map((keys) => client.cluster('KEYSLOT', keys[0]!)))
      t.equal(new Set(slots).size, calls.length)
    }
  })

  t.test('concurrent clamped increments from two clients on one subject lose no update', async (t) => {
    const prefix = testPrefix()
    const a = await connected(t, cluster, prefix)
    const b = await connected(t, cluster, prefix)
    const key = riskKeys.device('alice', 'd1')
    const bump = async (store: RedisStateStore) => {
      const batch = store.batch()
      batch.hIncrClamped(key, 'trust', 1, 0, 0, 1000, 60_000)
      batch.incrBy(riskKeys.minute('alice', 1), 1, 60_000)
      batch.incrBy(identityKeys.authFailures('81.2.69.142', 0), 1, 60_000)
      await batch.exec()
    }
    await Promise.all(Array.from({ length: 100 }, (_, i) => bump(i % 2 === 0 ? a : b)))
    const r = a.batch()
    const all = r.hGetAll(key)
    const minute = r.incrBy(riskKeys.minute('alice', 1), 0, 60_000)
    const failures = r.incrBy(identityKeys.authFailures('81.2.69.142', 0), 0, 60_000)
    await r.exec()
    t.same(all.value, { trust: '100' })
    t.equal(minute.value, 100)
    t.equal(failures.value, 100)
  })

  t.test('a stalled node fails the batches touching its slots within the time-out; the other nodes keep serving', async (t) => {
    const client = await admin(t, cluster)
    const prefix = testPrefix()
    const store = await RedisStateStore.connect({ clusterNodes: cluster.nodes, prefix, timeoutMs: TIMEOUT_MS, connectTimeoutMs: 10_000 })
    t.teardown(() => store.close())
    // Which node serves which subject's slot, asked before the stall.
    const owners = await client.cluster('SLOTS')
    const ownerOf = async (key: string) => {
      const slot = Number(await client.cluster('KEYSLOT', prefix + key))
      return owners.find(([from, to]) => slot >= from && slot <= to)![2]![1]
    }
    const stalled = cluster.nodes[0]!.port
    const subjects = Array.from({ length: 30 }, (_, i) => `user-${i}`)
    const onStalled: string[] = []
    const elsewhere: string[] = []
    for (const s of subjects) ((await ownerOf(riskKeys.countries(s))) === stalled ? onStalled : elsewhere).push(s)
    t.ok(onStalled.length > 0 && elsewhere.length > 0, 'subjects on the stalled node and on the others')
    cluster.signal(stalled, 'SIGSTOP')
    t.teardown(() => cluster.signal(stalled, 'SIGCONT'))
    const mixed = store.batch()
    for (const s of subjects) mixed.sAdd(riskKeys.countries(s), 'GB', 60_000)
    // Within the time-out, or sooner when ioredis gives up on the stalled node's connection: either way unavailable.
    await t.rejects(mixed.exec(), { name: 'StoreUnavailableError' })
    const healthy = store.batch()
    const added = elsewhere.map((s) => healthy.sAdd(riskKeys.countries(s), 'FR', 60_000))
    await healthy.exec()
    t.ok(added.every((a) => a.value === true), 'slots on the other nodes answer')
    cluster.signal(stalled, 'SIGCONT')
    const after = store.batch()
    const countries = after.sMembers(riskKeys.countries(onStalled[0]!))
    await after.exec()
    t.same(countries.value, ['GB'], 'the stalled node answers again once resumed')
  })

  t.test('the PDP on PDP_REDIS_CLUSTER_NODES keeps its state in the cluster and enforces a revocation', async (t) => {
    const admin = 'admin-token-for-tests-0123456789abcdef'
    const app = await build(t, {
      env: { PDP_REDIS_CLUSTER_NODES: cluster.env, PDP_REDIS_PREFIX: testPrefix(), PDP_STORE_TIMEOUT_MS: String(TIMEOUT_MS), PDP_ADMIN_TOKEN: admin },
    })
    t.match((await app.inject({ method: 'GET', url: '/readyz' })).json(), { store: { kind: 'redis', ok: true } })
    t.ok(app.store instanceof RedisStateStore && app.store.client instanceof Cluster, 'a cluster client')
    const context = trustedContext(Date.now())
    const payload = { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context }
    t.equal((await app.inject({ method: 'POST', url: '/decide', payload })).json().decision, 'allow')
    const revoked = await app.inject({ method: 'POST', url: '/admin/revocations', headers: { authorization: `Bearer ${admin}` }, payload: { sessionId: context.session.id } })
    t.equal(revoked.statusCode, 201)
    t.match((await app.inject({ method: 'POST', url: '/decide', payload })).json(), { decision: 'deny', reasons: ['session_revoked'] })
  })
})

t.test('a cluster that is not there fails fast with StoreUnavailableError', async (t) => {
  const errors: Error[] = []
  const store = await RedisStateStore.connect({ clusterNodes: [{ host: '127.0.0.1', port: 1 }], timeoutMs: 50, connectTimeoutMs: 200, onError: (e) => errors.push(e) })
  t.teardown(() => store.close())
  const b = store.batch()
  b.get('x')
  b.get('y')
  await t.rejects(b.exec(), StoreUnavailableError)
  await t.rejects(store.ping(), StoreUnavailableError)
  t.ok(errors.length > 0, 'connection errors reach the error callback, not the process')
})

t.test('a cluster prefix must leave the keys\' hash tags alone', async (t) => {
  await t.rejects(RedisStateStore.connect({ clusterNodes: [{ host: '127.0.0.1', port: 1 }], prefix: '{pdp}:' }), /holds a brace/)
  await t.rejects(build(t, { env: { PDP_REDIS_CLUSTER_NODES: '127.0.0.1:7000', PDP_REDIS_PREFIX: 'pdp{' } }), /^PDP_REDIS_PREFIX: must not contain "\{" or "\}"/)
  await t.rejects(build(t, { env: { PDP_REDIS_CLUSTER_NODES: '127.0.0.1:7000', PDP_REDIS_SENTINELS: '127.0.0.1:26379' } }), /^PDP_REDIS_CLUSTER_NODES: cannot be used with PDP_REDIS_SENTINELS$/)
  await t.rejects(build(t, { env: { PDP_REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_URL: 'redis://127.0.0.1:7000/3' } }), /^REDIS_URL: must not name a database other than 0/)
  await t.rejects(build(t, { env: { PDP_REDIS_CLUSTER_NODES: '127.0.0.1' } }), /^PDP_REDIS_CLUSTER_NODES: "127\.0\.0\.1" is not host:port$/)
})
