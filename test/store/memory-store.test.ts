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

/** One subject's keys, as the risk engine, identity and response name them: one hash tag, the owner. */
const subjectKeys = (id: string) => ({
  device: `risk:dev:{${id}}:laptop-1`,
  location: `risk:loc:{${id}}`,
  countries: `risk:ctry:{${id}}`,
  minute: `risk:bh:{${id}}:min:7`,
  window: `resp:win:burst:{${id}}`,
})

t.test('keys sharing a hash tag are separate keys: kinds, values, expiry and deletion do not leak between them', async (t) => {
  let now = 1_700_000_000_000
  const store = new MemoryStateStore({ now: () => now })
  const alice = subjectKeys('alice')
  const w = store.batch()
  w.hSet(alice.device, { trust: '50', note: 'x' }, 60_000)
  w.set(alice.location, '{"lat":1}', 0)
  w.sAdd(alice.countries, 'GB', 120_000)
  w.incrBy(alice.minute, 2, 1000)
  w.zAdd(alice.window, 5, 'e1', 0)
  // Keys that differ only around the tag, and a key whose tag is a prefix of another owner's.
  w.set('risk:loc:{alic}', 'other owner', 0)
  w.set('risk:loc:{alice}:x', 'longer suffix', 0)
  w.set('risk:lo:{alice}', 'shorter prefix', 0)
  w.set('{alice}', 'the tag alone', 0)
  w.set('alice', 'no tag', 0)
  await w.exec()
  t.equal(store.size, 10)
  t.equal(store.owners, 3, '{alice}, {alic} and the untagged key')

  const wrong = store.batch()
  wrong.hGetAll(alice.location)
  await t.rejects(wrong.exec(), /WRONGTYPE/, 'the location is a string even though the device beside it is a hash')

  now += 1500
  const r = store.batch()
  const device = r.hGetAll(alice.device)
  const location = r.get(alice.location)
  const countries = r.sMembers(alice.countries)
  const minute = r.get(alice.minute)
  const window = r.zRangeByScore(alice.window, 0, 10)
  const others = ['risk:loc:{alic}', 'risk:loc:{alice}:x', 'risk:lo:{alice}', '{alice}', 'alice'].map((k) => r.get(k))
  const deleted = r.del(alice.location)
  const afterDelete = r.get(alice.location)
  const deviceTtl = r.pTtl(alice.device)
  await r.exec()
  t.same(device.value, { trust: '50', note: 'x' })
  t.equal(location.value, '{"lat":1}')
  t.same(countries.value, ['GB'])
  t.equal(minute.value, null, 'the counter expired; its neighbours did not')
  t.same(window.value, ['e1'])
  t.same(others.map((o) => o.value), ['other owner', 'longer suffix', 'shorter prefix', 'the tag alone', 'no tag'])
  t.equal(deleted.value, 1)
  t.equal(afterDelete.value, null)
  t.equal(deviceTtl.value, 58_500, 'TTLs follow the injected clock')
  t.equal(store.size, 8)
})

t.test('a key taking the room of its owner\'s one expired key (the next minute\'s counter) keeps the neighbours and the account', async (t) => {
  let now = 1_700_000_000_000
  const store = new MemoryStateStore({ now: () => now })
  const alice = subjectKeys('alice')
  const next = alice.minute.replace(':min:7', ':min:8')
  const w = store.batch()
  w.hSet(alice.device, { trust: '50' }, 0)
  w.incrBy(alice.minute, 2, 1000)
  w.set(alice.location, '{"lat":1}', 0)
  w.sAdd(alice.countries, 'GB', 0)
  await w.exec()
  const before = store.bytes

  now += 1500
  const r = store.batch()
  const counted = r.incrBy(next, 1, 120_000)
  const old = r.get(alice.minute)
  const device = r.hGetAll(alice.device)
  const location = r.get(alice.location)
  const countries = r.sMembers(alice.countries)
  const ttl = r.pTtl(next)
  await r.exec()
  t.equal(counted.value, 1)
  t.equal(old.value, null, 'the expired counter is gone')
  t.same([device.value, location.value, countries.value], [{ trust: '50' }, '{"lat":1}', ['GB']], 'the neighbours are untouched')
  t.equal(ttl.value, 120_000)
  t.equal(store.size, 4)
  t.equal(store.bytes, before, 'a counter of the same size replaced one: the account is unchanged')

  const again = store.batch()
  const twice = again.incrBy(next, 1, 120_000)
  await again.exec()
  t.equal(twice.value, 2, 'the counter reads back where it was written')

  const d = store.batch()
  for (const key of [alice.device, next, alice.location, alice.countries]) d.del(key)
  await d.exec()
  t.equal(store.size, 0)
  t.equal(store.bytes, 0, 'nothing left, nothing accounted')
})

t.test('eviction takes whole owners: a subject\'s state goes at once, and a used subject keeps all of it', async (t) => {
  const store = new MemoryStateStore({ maxKeys: 50 })
  const write = async (id: string) => {
    const keys = subjectKeys(id)
    const b = store.batch()
    b.hSet(keys.device, { trust: '50' }, 0)
    b.set(keys.location, 'here', 0)
    b.sAdd(keys.countries, 'GB', 0)
    b.incrBy(keys.minute, 1, 0)
    b.zAdd(keys.window, 1, 'e', 0)
    await b.exec()
  }
  await write('kept')
  for (let i = 0; i < 40; i++) {
    await write(`s${i}`)
    // A read of one of its keys is a use of the subject.
    const b = store.batch()
    b.get(subjectKeys('kept').location)
    await b.exec()
  }
  t.ok(store.size <= 50, `${store.size} keys kept`)
  t.equal(store.size % 5, 0, 'only whole subjects were evicted')
  t.equal(store.owners, store.size / 5)
  const b = store.batch()
  const kept = Object.values(subjectKeys('kept')).map((k) => b.pTtl(k))
  const oldest = Object.values(subjectKeys('s0')).map((k) => b.pTtl(k))
  const newest = b.hGetAll(subjectKeys('s39').device)
  await b.exec()
  t.same(kept.map((p) => p.value), [-1, -1, -1, -1, -1], 'the subject in use kept every key')
  t.same(oldest.map((p) => p.value), [-2, -2, -2, -2, -2], 'the oldest subject lost every key')
  t.same(newest.value, { trust: '50' })
})

t.test('hashes, sets and sorted sets past the small size keep working and keep their account', async (t) => {
  const store = new MemoryStateStore({ maxMembersPerKey: 40 })
  const keys = subjectKeys('big')
  const w = store.batch()
  for (let i = 0; i < 50; i++) {
    w.hSet(keys.device, { [`f${i}`]: String(i) }, 0)
    w.sAdd(keys.countries, `c${i}`, 0)
    w.zAdd(keys.window, i % 7, `m${i}`, 0)
  }
  const counted = w.hIncrBy(keys.device, 'f49', 1, 0)
  w.hSet(keys.device, { f10: 'newest' }, 0)
  const again = w.sAdd(keys.countries, 'c20', 0)
  w.zAdd(keys.window, 100, 'm20', 0)
  const fields = w.hGetAll(keys.device)
  const members = w.sMembers(keys.countries)
  const card = w.sCard(keys.countries)
  const high = w.zRangeByScore(keys.window, 6, Infinity)
  const count = w.zCount(keys.window, -Infinity, Infinity)
  await w.exec()
  t.equal(counted.value, 50)
  t.equal(Object.keys(fields.value).length, 40, 'trimmed to the member limit, oldest first')
  t.equal(fields.value['f9'], undefined)
  t.equal(fields.value['f10'], 'newest', 'a rewritten field counts as the newest')
  t.equal(fields.value['f49'], '50')
  t.equal(again.value, false)
  t.equal(card.value, 40)
  t.same(members.value.slice(-1), ['c20'], 're-adding moves a member to the newest end')
  t.notOk(members.value.includes('c0'))
  t.equal(count.value, 40)
  // Trimming took the ten lowest scores, oldest first (m0, m7 ... m42, then m49 itself, then m1 and m8); ties sort by member.
  t.same(high.value, ['m13', 'm27', 'm34', 'm41', 'm48', 'm6', 'm20'])

  const d = store.batch()
  for (let i = 0; i < 50; i++) {
    d.hDel(keys.device, `f${i}`)
    d.sRem(keys.countries, `c${i}`)
  }
  const removed = d.zRemRangeByScore(keys.window, -Infinity, Infinity)
  await d.exec()
  t.equal(removed.value, 40)
  t.equal(store.size, 0)
  t.equal(store.owners, 0)
  t.equal(store.bytes, 0, 'the account is back to zero')
})

t.test('a clock with fractions of a millisecond expires keys exactly', async (t) => {
  let now = 1_700_000_000_000.25
  const store = new MemoryStateStore({ now: () => now })
  const w = store.batch()
  w.set('{f}:a', 'x', 1000.5)
  await w.exec()
  now += 1000.5 - 0.125
  const r = store.batch()
  const ttl = r.pTtl('{f}:a')
  await r.exec()
  t.equal(ttl.value, 0.125)
  now += 0.125
  const gone = store.batch()
  const value = gone.get('{f}:a')
  await gone.exec()
  t.equal(value.value, null)
})

t.test('numbers written as text read back as the same text', async (t) => {
  const store = new MemoryStateStore()
  const texts = ['0', '-3', '007', '1e3', '1.50', '1.5', '-0', '', ' 1', '1700000000000', '12345678901234567890', 'NaN', 'Infinity']
  // Around the digits-only path: 15 and 16 digits, a sign alone, a sign before a zero, a digit after a non-digit.
  texts.push('999999999999999', '-99999999999999', '9007199254740993', '-', '-07', '1x', '12 ', '+1')
  const w = store.batch()
  texts.forEach((v, i) => w.set(`n:{t}:${i}`, v, 0))
  w.hSet('h:{t}', Object.fromEntries(texts.map((v, i) => [`f${i}`, v])), 0)
  const values = texts.map((_, i) => w.get(`n:{t}:${i}`))
  const fields = w.hGetAll('h:{t}')
  await w.exec()
  t.same(values.map((v) => v.value), texts)
  t.same(Object.values(fields.value), texts)
})

t.test('an owner with hundreds of keys: past the record\'s size its keys still read, write, expire and go', async (t) => {
  let now = 1_700_000_000_000
  const store = new MemoryStateStore({ now: () => now })
  const session = (i: number) => `id:sess:{many}:s${i}`
  const w = store.batch()
  for (let i = 0; i < 300; i++) w.hSet(session(i), { n: String(i) }, i % 2 === 0 ? 1000 : 0)
  w.set('risk:loc:{many}', 'here', 0)
  await w.exec()
  t.equal(store.size, 301)
  const r = store.batch()
  const all = Array.from({ length: 300 }, (_, i) => r.hGetAll(session(i)))
  const wrong = store.batch()
  wrong.get(session(250))
  await r.exec()
  t.same(all.map((p) => p.value['n']), Array.from({ length: 300 }, (_, i) => String(i)))
  await t.rejects(wrong.exec(), /WRONGTYPE/, 'a spilled key keeps its kind')

  now += 1500
  const after = store.batch()
  const odd = after.hGetAll(session(299))
  const even = after.hGetAll(session(298))
  const added = after.setIfAbsent(session(298), 'again', 0)
  const deleted = after.del(session(297))
  const location = after.get('risk:loc:{many}')
  await after.exec()
  t.same(odd.value, { n: '299' })
  t.same(even.value, {}, 'an expired spilled key is gone')
  t.equal(added.value, true)
  t.equal(deleted.value, 1)
  t.equal(location.value, 'here')
  t.equal(store.size, 151, 'the 150 expired keys no longer count; one came back, one was deleted')

  const clear = store.batch()
  for (let i = 0; i < 300; i++) clear.del(session(i))
  clear.del('risk:loc:{many}')
  await clear.exec()
  t.equal(store.size, 0)
  t.equal(store.owners, 0)
  t.equal(store.bytes, 0)
})
