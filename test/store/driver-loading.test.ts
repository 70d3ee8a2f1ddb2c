import t from 'tap'
import { join } from 'node:path'
import { ROOT } from '../helpers/build.js'
import { exitOf, listening } from '../helpers/process.js'

// Every package a process loads adds to its start, and the Redis client is about a tenth of the server's: the
// embedded store (the default) must not pay for it. The real process, with a preload that lists what it loaded.
const PRELOAD = { NODE_OPTIONS: `--require ${join(ROOT, 'test/fixtures/loaded-packages.cjs')}` }

async function packagesOfARun(env: Record<string, string>): Promise<string[]> {
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
  const packages = await packagesOfARun({})
  t.ok(packages.includes('fastify'), 'the list holds what the server loads')
  t.notOk(packages.includes('ioredis'), packages.join(' '))
})

t.test('with REDIS_URL it does', async (t) => {
  const packages = await packagesOfARun({ REDIS_URL: 'redis://127.0.0.1:6379/15', PDP_REDIS_PREFIX: `driver-loading-${process.pid}:` })
  t.ok(packages.includes('ioredis'))
})
