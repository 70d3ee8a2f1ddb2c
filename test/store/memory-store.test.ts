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
