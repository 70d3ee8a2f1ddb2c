import t from 'tap'
import { MemoryStateStore } from '../../src/store/memory-store.js'
import { CALLER, build, manualClock, trustedContext } from '../helpers/build.js'

t.test('decisions for distinct 256-character subject ids keep the embedded store within PDP_STORE_MAX_BYTES', async (t) => {
  const maxBytes = 1024 * 1024
  const clock = manualClock()
  // A trusted service names the subjects, so every decision writes (anonymous ones write nothing).
  const app = await build(t, { env: { ...CALLER.env, PDP_STORE_MAX_BYTES: String(maxBytes) }, now: clock.now })
  const store = app.store
  if (!(store instanceof MemoryStateStore)) throw new Error('expected the embedded store')
  let highest = 0
  let allowed = 0
  // Some 1.3 KB of accounted state each: 1 MiB holds about 800 such subjects, so the flood goes well past the bound.
  const decisions = 1200
  for (let i = 0; i < decisions; i++) {
    const id = `${i}-`.padEnd(256, 's')
    const context = trustedContext(clock.now(), `device-${i}`)
    const res = await app.inject({
      method: 'POST',
      url: '/decide',
      headers: CALLER.headers,
      payload: {
        subject: { id, tenant: 'acme', roles: ['employee'] },
        action: 'read',
        resource: { type: 'documents', attributes: { owner: id } },
        context: { ...context, ip: '81.2.69.142', session: { ...context.session, id: `session-${i}` } },
      },
    })
    if (res.json().decision === 'allow') allowed++
    highest = Math.max(highest, store.bytes)
    clock.advance(100)
  }
  t.equal(allowed, decisions, 'every decision was answered as usual')
  t.ok(highest <= maxBytes, `the accounted bytes peaked at ${highest}, within ${maxBytes}`)
  t.ok(store.bytes > maxBytes * 0.9, 'the bound was reached, so the flood made the store evict')
})
