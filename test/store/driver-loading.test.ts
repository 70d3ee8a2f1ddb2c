import t from 'tap'
import { join } from 'node:path'
import { ROOT } from '../helpers/build.js'
import { exitOf, listening } from '../helpers/process.js'

// Every package a process loads adds to its start, the Redis client about 100 ms of CPU: the embedded store (the
// default) must not pay for it. The real process, with a preload that lists the packages it loaded when it exits.
t.test('on the embedded store the server never loads the Redis client', async (t) => {
  const p = await listening({ NODE_OPTIONS: `--require ${join(ROOT, 'test/fixtures/loaded-packages.cjs')}` })
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
  const packages = JSON.parse(line!.slice('loaded packages: '.length)) as string[]
  // What the server loads is listed, so the check can see a package; the Redis store's own tests load ioredis.
  t.ok(packages.includes('fastify'), 'the list holds what the server loads')
  t.notOk(packages.includes('ioredis'), packages.join(' '))
})
