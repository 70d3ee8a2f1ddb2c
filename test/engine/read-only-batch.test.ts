import t from 'tap'
import type { Test } from 'tap'
import { readOnlyBatch } from '../../src/engine/read-only-batch.js'
import { MemoryStateStore } from '../../src/store/memory-store.js'
import { RedisStateStore } from '../../src/store/redis-store.js'
import type { StateStore, StoreBatch } from '../../src/engine/ports.js'
import { isolatedPrefix, redisTarget } from '../helpers/redis.js'
import { deadline } from '../helpers/deadline.js'

const HOUR = 3_600_000

async function seed(store: StateStore): Promise<void> {
  const b = store.batch()
  b.set('s', 'v', HOUR)
  b.incrBy('n', 5, HOUR)
  b.hSet('h', { a: '1', t: '40' }, HOUR)
  b.sAdd('set', 'x', HOUR)
  b.zAdd('z', 10, 'm1', HOUR)
  b.zAdd('z', 20, 'm2', HOUR)
  await b.exec()
}

/** Every write the engine can queue; each returns what a caller reads of it (undefined for plain writes). */
const WRITES: ((b: StoreBatch) => { value: unknown } | void)[] = [
  (b) => b.set('s', 'changed', HOUR),
  (b) => b.hSet('h', { a: '9' }, HOUR),
  (b) => b.zAdd('z', 30, 'm3', HOUR),
  (b) => b.setIfAbsent('s', 'x', HOUR),
  (b) => b.setIfAbsent('absent', 'x', HOUR),
  (b) => b.getSet('s', 'y', HOUR),
  (b) => b.incrBy('n', 2, HOUR),
  (b) => b.incrBy('fresh', 3, HOUR),
  (b) => b.hIncrBy('h', 'a', 4, HOUR),
  (b) => b.hIncrBy('h', 'missing', 1, HOUR),
  (b) => b.hIncrClamped('h', 't', 80, 50, 0, 100, HOUR),
  (b) => b.hIncrClamped('h2', 't', -60, 50, 0, 100, HOUR),
  (b) => b.sAdd('set', 'x', HOUR),
  (b) => b.sAdd('set', 'y', HOUR),
  (b) => b.sRem('set', 'x'),
  (b) => b.sRem('set', 'z'),
  (b) => b.hDel('h', 'a'),
  (b) => b.hDel('h', 'nope'),
  (b) => b.zRemRangeByScore('z', 0, 15),
  (b) => b.del('s'),
  (b) => b.del('nothing-here'),
]

async function snapshot(store: StateStore) {
  const b = store.batch()
  const values = [b.get('s'), b.get('n'), b.get('absent'), b.get('fresh'), b.hGetAll('h'), b.hGetAll('h2'), b.sMembers('set'), b.zRangeByScore('z', 0, 100)]
  await b.exec()
  return values.map((v) => v.value)
}

async function suite(t: Test, make: () => Promise<StateStore>) {
  for (const [i, write] of WRITES.entries()) {
    const real = await make()
    const viewed = await make()
    await seed(real)
    await seed(viewed)
    const before = await snapshot(viewed)
    const rb = real.batch()
    const wrote = write(rb)
    await rb.exec()
    const vb = readOnlyBatch(viewed.batch())
    const read = write(vb)
    await vb.exec()
    t.same(read?.value, wrote?.value, `write ${i}: the view answers as the write would have`)
    t.same(await snapshot(viewed), before, `write ${i}: the viewed store is unchanged`)
  }
}

t.test('memory store', (t) => suite(t, async () => new MemoryStateStore({ now: Date.now })))

const target = await redisTarget()
t.test('Redis store', { skip: target.skip }, async (t) => {
  await suite(t, async () => {
    const store = await RedisStateStore.connect({ url: target.url!, prefix: isolatedPrefix(t, target.url!), timeoutMs: deadline(5_000) })
    t.teardown(() => store.close())
    return store
  })
})
