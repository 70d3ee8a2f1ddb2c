import t, { type Test } from 'tap'
import { join } from 'node:path'
import { ROOT } from '../helpers/build.js'
import { exitOf, listening } from '../helpers/process.js'
import { isolatedPrefix, redisTarget } from '../helpers/redis.js'

// Every package a process loads adds to its start, the Redis client about 100 ms of CPU: the embedded store (the
// default) must not pay for it. The real process, with a preload that lists what it loaded.
const PRELOAD = { NODE_OPTIONS: `--require ${join(ROOT, 'test/fixtures/loaded-packages.cjs')}` }

async function packagesOfARun(t: Test, env: Record<string, string>): Promise<string[]> {
  const p = await listening({ ...PRELOAD, ...env })
  try {
    const res = await fetch(`${p.base}/decide`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ subject: { id: 'alice', tenant: 'acme' }, action: 'read', resource: { type: 'documents' } }),
    })
    t.equal(res.status, 200, 'it decides')
  } finally {
    p.child.kill('SIGTERM')
  }
  t.equal(await exitOf(p.child), 0)
  const line = p.stderr().split('\n').find((l) => l.startsWith('loaded packages: '))
  t.ok(line, 'the preload reported')
  return JSON.parse(line!.slice('loaded packages: '.length)) as string[]
}

t.test('on the embedded store the server never loads the Redis client', async (t) => {
  const packages = await packagesOfARun(t, {})
  t.ok(packages.includes('fastify'), 'the list holds what the server loads')
  t.notOk(packages.includes('ioredis'), packages.join(' '))
})

const redis = await redisTarget()

t.test('with REDIS_URL it does', { skip: redis.skip }, async (t) => {
  const packages = await packagesOfARun(t, { REDIS_URL: redis.url!, PDP_REDIS_PREFIX: isolatedPrefix(t, redis.url!) })
  t.ok(packages.includes('ioredis'))
})
