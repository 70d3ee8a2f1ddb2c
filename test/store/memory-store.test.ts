import t from 'tap'
import { MemoryStateStore } from '../../src/store/memory-store.js'
import { stateStoreContract } from './contract.js'

stateStoreContract(t, async () => {
  let now = 1_700_000_000_000
  const store = new MemoryStateStore({ now: () => now })
  t.teardown(() => store.close())
  return { store, advance: (ms) => (now += ms) }
})

t.test('memory stays bounded: least recently used keys go first', async (t) => {
  const store = new MemoryStateStore({ maxKeys: 100 })
  for (let i = 0; i < 250; i++) {
    const b = store.batch()
    b.set(`k:${i}`, 'v', 0)
    if (i % 10 === 0) b.get('k:0')
    await b.exec()
  }
  t.equal(store.size, 100)
  const b = store.batch()
  const recent = b.get('k:249')
  const old = b.get('k:5')
  const touched = b.get('k:0')
  await b.exec()
  t.equal(recent.value, 'v')
  t.equal(old.value, null, 'evicted')
  t.equal(touched.value, 'v', 'kept because it was used')
})

t.test('sets, hashes and sorted sets are trimmed to the member limit', async (t) => {
  const store = new MemoryStateStore({ maxMembersPerKey: 5 })
  const b = store.batch()
  for (let i = 0; i < 8; i++) {
    b.sAdd('s', `m${i}`, 0)
    b.hSet('h', { [`f${i}`]: String(i) }, 0)
    b.zAdd('z', i, `z${i}`, 0)
  }
  const members = b.sMembers('s')
  const fields = b.hGetAll('h')
  const range = b.zRangeByScore('z', -Infinity, Infinity)
  await b.exec()
  t.same(members.value, ['m3', 'm4', 'm5', 'm6', 'm7'], 'oldest members dropped')
  t.same(Object.keys(fields.value), ['f3', 'f4', 'f5', 'f6', 'f7'])
  t.same(range.value, ['z3', 'z4', 'z5', 'z6', 'z7'], 'lowest scores dropped')
})

t.test('a closed store refuses work', async (t) => {
  const store = new MemoryStateStore()
  await store.close()
  await t.rejects(store.ping())
  await t.rejects(store.batch().exec())
})

/** A distinct id of 256 characters, like the subject ids of the flood in issue 14. */
const longId = (i: number) => `${i}-`.padEnd(256, 'x')

t.test('memory stays bounded in bytes: a flood of distinct 256-character ids never takes the store past its bound', async (t) => {
  const maxBytes = 1024 * 1024
  const store = new MemoryStateStore({ maxBytes })
  let highest = 0
  for (let i = 0; i < 5000; i++) {
    const id = longId(i)
    const b = store.batch()
    b.hSet(`device:${id}:laptop`, { trust: '50', firstSeen: '1700000000000', lastSeen: '1700000000000' }, 3_600_000)
    b.sAdd(`countries:${id}`, 'GB', 3_600_000)
    b.zAdd(`events:${id}`, i, `event-${id}`, 3_600_000)
    b.set(`loc:${id}`, JSON.stringify({ country: 'GB', lat: 51.5, lon: -0.1, at: 1700000000000 }), 3_600_000)
    b.incrBy(`minute:${id}`, 1, 120_000)
    await b.exec()
    highest = Math.max(highest, store.bytes)
  }
  t.ok(highest <= maxBytes, `the accounted bytes peaked at ${highest}, within ${maxBytes}`)
  t.ok(store.bytes > maxBytes * 0.9, 'the store is full, not empty: it evicts to make room')
  t.ok(store.size < 5 * 5000, `evicted: ${store.size} keys kept of ${5 * 5000} written`)
  const b = store.batch()
  const newest = b.hGetAll(`device:${longId(4999)}:laptop`)
  const oldest = b.hGetAll(`device:${longId(0)}:laptop`)
  await b.exec()
  t.same(newest.value, { trust: '50', firstSeen: '1700000000000', lastSeen: '1700000000000' }, 'the newest state is kept')
  t.same(oldest.value, {}, 'the oldest went first')
})

t.test('a key used recently survives eviction by bytes', async (t) => {
  const store = new MemoryStateStore({ maxBytes: 1024 * 1024 })
  const first = store.batch()
  first.set('keep', 'v', 0)
  await first.exec()
  for (let i = 0; i < 4000; i++) {
    const b = store.batch()
    b.set(`k:${longId(i)}`, 'v'.repeat(100), 0)
    if (i % 100 === 0) b.get('keep')
    await b.exec()
  }
  const b = store.batch()
  const kept = b.get('keep')
  const old = b.get(`k:${longId(10)}`)
  await b.exec()
  t.equal(kept.value, 'v')
  t.equal(old.value, null)
})

t.test('the byte account follows every write, change, trim, delete and expiry back to zero', async (t) => {
  let now = 1_700_000_000_000
  const store = new MemoryStateStore({ now: () => now, maxMembersPerKey: 3 })
  const write = store.batch()
  write.set('s', 'short', 0)
  write.set('s', 'a much longer value than before', 0)
  write.getSet('s2', 'x', 0)
  write.setIfAbsent('s3', 'y', 1000)
  write.incrBy('n', 5, 0)
  write.incrBy('n', 123_456, 0)
  write.hSet('h', { a: '1', b: 'two', c: 'three' }, 0)
  write.hSet('h', { a: 'replaced', d: 'four' }, 0)
  write.hIncrBy('h', 'e', 10, 0)
  write.hIncrClamped('h', 'f', 5, 50, 0, 100, 0)
  for (let i = 0; i < 6; i++) {
    write.sAdd('set', `member-${i}`, 0)
    write.zAdd('z', i, `z-${i}`, 0)
  }
  write.sAdd('set', 'member-5', 0)
  write.zAdd('z', 10, 'z-5', 0)
  write.hSet('gone', { f: 'v' }, 1000)
  await write.exec()
  t.ok(store.bytes > 0)

  now += 2000
  const remove = store.batch()
  t.equal(store.size, 6, 'the expired keys no longer count')
  remove.get('s3')
  remove.hGetAll('gone')
  remove.del('s')
  remove.del('s2')
  remove.del('n')
  for (const field of ['a', 'b', 'c', 'd', 'e', 'f']) remove.hDel('h', field)
  for (let i = 0; i < 6; i++) remove.sRem('set', `member-${i}`)
  remove.zRemRangeByScore('z', -Infinity, Infinity)
  await remove.exec()
  t.equal(store.size, 0)
  t.equal(store.bytes, 0, 'nothing left, nothing accounted')
})
