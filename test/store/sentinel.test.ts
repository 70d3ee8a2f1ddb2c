import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, trustedContext } from '../helpers/build.js'
import { deadline, until } from '../helpers/deadline.js'
import { STORE_TIMEOUT_MS, isolatedPrefix, redisTarget } from '../helpers/redis.js'
import { RedisStateStore } from '../../src/store/redis-store.js'
import { freePort } from '../gateways/net.js'
import { stateStoreContract } from './contract.js'

const target = await redisTarget()
// Sentinel runs as `redis-server --sentinel`; without the binary on this machine there is nothing to start.
const serverBinary = spawnSync('redis-server', ['--version']).status === 0
const skip = target.skip || (serverBinary ? false : 'Sentinel test skipped: redis-server is not on PATH to start a sentinel')

/** Starts `redis-server --sentinel` watching the test Redis as master `pdp-test`; resolves with a client of it once it answers. */
async function startSentinel(t: Test, master: URL) {
  const dir = await mkdtemp(join(tmpdir(), 'pdp-sentinel-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  const config = join(dir, 'sentinel.conf')
  await writeFile(config, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor pdp-test ${master.hostname} ${master.port || 6379} 1`, ''].join('\n'))
  const sentinel = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' })
  t.teardown(() => {
    sentinel.kill('SIGTERM')
  })
  const { Redis } = await import('ioredis')
  // The sentinel process needs a moment to start: try to connect until it answers.
  let probe: InstanceType<typeof Redis> | undefined
  await until(async () => {
    const attempt = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    attempt.on('error', () => {})
    try {
      await attempt.connect()
      probe = attempt
      return true
    } catch {
      attempt.disconnect()
      return false
    }
  }, `the sentinel on port ${port} to answer`, deadline(60_000), 50)
  t.teardown(() => probe!.disconnect())
  return { port, probe: probe! }
}

t.test('through Redis Sentinel', { skip }, async (t) => {
  const master = new URL(target.url!)
  const { port, probe } = await startSentinel(t, master)
  t.same(await probe.call('SENTINEL', 'get-master-addr-by-name', 'pdp-test'), [master.hostname, master.port || '6379'])

  t.test('the PDP asks the sentinel for the master and keeps its state there', async (t) => {
    const prefix = isolatedPrefix(t, target.url!)
    const { Redis } = await import('ioredis')
    const raw = new Redis(target.url!)
    t.teardown(() => raw.quit())
    const admin = 'admin-token-for-tests-0123456789abcdef'
    const app = await build(t, {
      env: {
        REDIS_URL: `redis://${master.host}${master.pathname}`,
        PDP_REDIS_SENTINELS: `127.0.0.1:${port}`,
        PDP_REDIS_SENTINEL_MASTER: 'pdp-test',
        PDP_REDIS_PREFIX: prefix,
        PDP_STORE_TIMEOUT_MS: STORE_TIMEOUT_MS,
        PDP_ADMIN_TOKEN: admin,
      },
    })
    const ready = await app.inject({ method: 'GET', url: '/readyz' })
    t.match(ready.json(), { store: { kind: 'redis', ok: true } })
    const context = trustedContext(Date.now())
    const payload = { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context }
    t.equal((await app.inject({ method: 'POST', url: '/decide', payload })).json().decision, 'allow')
    await app.inject({ method: 'POST', url: '/admin/revocations', headers: { authorization: `Bearer ${admin}` }, payload: { sessionId: context.session.id } })
    t.match((await app.inject({ method: 'POST', url: '/decide', payload })).json(), { decision: 'deny', reasons: ['session_revoked'] })
    t.ok((await raw.keys(`${prefix}*`)).length > 0, 'the state is in the master the sentinel named')
  })

  t.test('contract, through the master the sentinel names', async (t) => {
    stateStoreContract(t, async () => {
      const store = await RedisStateStore.connect({
        url: target.url!,
        sentinels: [{ host: '127.0.0.1', port }],
        sentinelMaster: 'pdp-test',
        prefix: isolatedPrefix(t, target.url!),
        timeoutMs: Number(STORE_TIMEOUT_MS),
      })
      t.teardown(() => store.close())
      return { store }
    })
  })
})

t.test('PDP_REDIS_SENTINELS must be host:port pairs', async (t) => {
  await t.rejects(build(t, { env: { PDP_REDIS_SENTINELS: '127.0.0.1' } }), /^PDP_REDIS_SENTINELS: "127\.0\.0\.1" is not host:port$/)
})
