import t from 'tap'
import fc from 'fast-check'
import type { StateStore, StoreBatch } from '../../src/engine/ports.js'
import { MemoryStateStore } from '../../src/store/memory-store.js'
import { RedisStateStore } from '../../src/store/redis-store.js'
import { STORE_TIMEOUT_MS, isolatedPrefix, redisTarget } from '../helpers/redis.js'

/*
 * The embedded store against Redis itself: random batches over a few owners' keys (tagged like the PDP's, and
 * untagged), run on both, must give the same results, fail together (WRONGTYPE), and leave the same state. The
 * domain stays where the two agree by design: integer counters on integer text (Redis refuses "007", the embedded
 * store reads it as 7), no empty hSet (Redis refuses it), TTLs of an hour or none (Redis keeps its own clock).
 * Sets and hashes grow past the embedded store's small size, so both of its representations are compared.
 */

const HOUR = 3_600_000
const OWNERS = ['{a}', '{b}', '{a%7Bb}']
const NAMES = ['s:', 'c:', 'h:', 'set:', 'z:']
/** Keys: a name before each owner's tag, a suffix after it, and one untagged key of each name. */
const KEYS = [...OWNERS.flatMap((owner) => NAMES.flatMap((name) => [`${name}${owner}`, `${name}${owner}:x`])), ...NAMES.map((name) => `${name}plain`)]
const counterKey = (key: string) => key.startsWith('c:')

const key = fc.constantFrom(...KEYS)
/** Mostly a key named for the operation's kind, so that most batches run through; now and then any key (WRONGTYPE). */
const keyFor = (...names: string[]) =>
  fc.oneof({ weight: 15, arbitrary: fc.constantFrom(...KEYS.filter((k) => names.some((name) => k.startsWith(name)))) }, { weight: 1, arbitrary: key })
const stringKey = keyFor('s:', 'c:')
const hashKey = keyFor('h:')
const setKey = keyFor('set:')
const zsetKey = keyFor('z:')
const ttl = fc.constantFrom(0, HOUR)
const text = fc.constantFrom('v', '', '007', '1e3', '12', '-3', 'x'.repeat(40))
const integerText = fc.integer({ min: -50, max: 50 }).map(String)
const member = fc.integer({ min: 0, max: 29 }).map((i) => `m${i}`)
const field = fc.oneof(fc.constantFrom('n1', 'n2'), fc.integer({ min: 0, max: 24 }).map((i) => `f${i}`))
const fieldValue = (name: string) => (name.startsWith('n') ? integerText : text)
const fields = fc.array(field, { minLength: 1, maxLength: 3 }).chain((names) => fc.tuple(...names.map((name) => fieldValue(name).map((v) => [name, v] as const))))
const score = fc.integer({ min: 0, max: 20 })
const bound = fc.oneof(fc.constant(-Infinity), fc.constant(Infinity), score)

type Op = (b: StoreBatch) => { value: unknown } | undefined
const op: fc.Arbitrary<[string, Op]> = fc.oneof(
  stringKey.map((k): [string, Op] => [`get ${k}`, (b) => b.get(k)]),
  fc.tuple(stringKey, ttl).chain(([k, ms]) => (counterKey(k) ? integerText : text).map((v): [string, Op] => [`set ${k} ${v}`, (b) => (b.set(k, v, ms), undefined)])),
  fc.tuple(stringKey, ttl).chain(([k, ms]) => (counterKey(k) ? integerText : text).map((v): [string, Op] => [`setIfAbsent ${k} ${v}`, (b) => b.setIfAbsent(k, v, ms)])),
  fc.tuple(stringKey, ttl).chain(([k, ms]) => (counterKey(k) ? integerText : text).map((v): [string, Op] => [`getSet ${k} ${v}`, (b) => b.getSet(k, v, ms)])),
  key.map((k): [string, Op] => [`del ${k}`, (b) => b.del(k)]),
  fc.tuple(fc.constantFrom(...KEYS.filter(counterKey)), fc.integer({ min: -5, max: 5 }), ttl).map(([k, by, ms]): [string, Op] => [`incrBy ${k} ${by}`, (b) => b.incrBy(k, by, ms)]),
  hashKey.map((k): [string, Op] => [`hGetAll ${k}`, (b) => b.hGetAll(k)]),
  fc.tuple(hashKey, fields, ttl).map(([k, f, ms]): [string, Op] => [`hSet ${k} ${JSON.stringify(f)}`, (b) => (b.hSet(k, Object.fromEntries(f), ms), undefined)]),
  fc.tuple(hashKey, field).map(([k, f]): [string, Op] => [`hDel ${k} ${f}`, (b) => b.hDel(k, f)]),
  fc.tuple(hashKey, fc.constantFrom('n1', 'n2'), fc.integer({ min: -5, max: 5 }), ttl).map(([k, f, by, ms]): [string, Op] => [`hIncrBy ${k} ${f} ${by}`, (b) => b.hIncrBy(k, f, by, ms)]),
  fc.tuple(hashKey, fc.constantFrom('n1', 'n2'), fc.integer({ min: -30, max: 30 }), ttl).map(([k, f, by, ms]): [string, Op] => [`hIncrClamped ${k} ${f} ${by}`, (b) => b.hIncrClamped(k, f, by, 10, 0, 40, ms)]),
  fc.tuple(setKey, member, ttl).map(([k, m, ms]): [string, Op] => [`sAdd ${k} ${m}`, (b) => b.sAdd(k, m, ms)]),
  fc.tuple(setKey, member).map(([k, m]): [string, Op] => [`sRem ${k} ${m}`, (b) => b.sRem(k, m)]),
  setKey.map((k): [string, Op] => [`sMembers ${k}`, (b) => b.sMembers(k)]),
  setKey.map((k): [string, Op] => [`sCard ${k}`, (b) => b.sCard(k)]),
  fc.tuple(zsetKey, score, member, ttl).map(([k, s, m, ms]): [string, Op] => [`zAdd ${k} ${s} ${m}`, (b) => (b.zAdd(k, s, m, ms), undefined)]),
  fc.tuple(zsetKey, bound, bound).map(([k, lo, hi]): [string, Op] => [`zRemRangeByScore ${k} ${lo} ${hi}`, (b) => b.zRemRangeByScore(k, lo, hi)]),
  fc.tuple(zsetKey, bound, bound).map(([k, lo, hi]): [string, Op] => [`zCount ${k} ${lo} ${hi}`, (b) => b.zCount(k, lo, hi)]),
  fc.tuple(zsetKey, bound, bound).map(([k, lo, hi]): [string, Op] => [`zRangeByScore ${k} ${lo} ${hi}`, (b) => b.zRangeByScore(k, lo, hi)]),
  key.map((k): [string, Op] => [`pTtl ${k}`, (b) => b.pTtl(k)]),
)
/** Many small batches, so that sets and hashes built over several of them grow past the small size. */
const batches = fc.array(fc.array(op, { minLength: 1, maxLength: 8 }), { minLength: 20, maxLength: 60 })

/** Results as both stores should give them: sets' members and hashes' fields in any order, a TTL only as none, missing or some. */
function normal(name: string, value: unknown): unknown {
  if (name.startsWith('sMembers')) return [...(value as string[])].sort()
  if (name.startsWith('hGetAll')) return Object.entries(value as Record<string, string>).sort()
  if (name.startsWith('pTtl')) return (value as number) > 0 ? 'ttl' : value
  return value
}

/** Runs one batch; its results, or that it failed. */
async function run(store: StateStore, ops: [string, Op][]): Promise<unknown[] | 'failed'> {
  const b = store.batch()
  const pending = ops.map(([, queue]) => queue(b))
  try {
    await b.exec()
  } catch {
    return 'failed'
  }
  return pending.map((p, i) => (p ? normal(ops[i]![0], p.value) : null))
}

/** Every key's state, read with the operation of each kind (a kind that does not fit fails its own batch). */
async function state(store: StateStore): Promise<unknown[]> {
  const reads: [string, Op][][] = KEYS.flatMap((k) => [
    [[`pTtl ${k}`, (b: StoreBatch) => b.pTtl(k)]],
    [[`get ${k}`, (b: StoreBatch) => b.get(k)]],
    [[`hGetAll ${k}`, (b: StoreBatch) => b.hGetAll(k)]],
    [[`sMembers ${k}`, (b: StoreBatch) => b.sMembers(k)]],
    [[`zRangeByScore ${k}`, (b: StoreBatch) => b.zRangeByScore(k, -Infinity, Infinity)]],
  ])
  const out: unknown[] = []
  for (const read of reads) out.push(await run(store, read))
  return out
}

const target = await redisTarget()

t.test('the embedded store answers as Redis does', { skip: target.skip }, async (t) => {
  let runs = 0
  let ran = 0
  let failed = 0
  await fc.assert(
    fc.asyncProperty(batches, async (sequence) => {
      runs++
      const memory = new MemoryStateStore()
      const real = await RedisStateStore.connect({ url: target.url!, prefix: isolatedPrefix(t, target.url!), timeoutMs: Number(STORE_TIMEOUT_MS) })
      try {
        for (const ops of sequence) {
          const expected = await run(real, ops)
          const actual = await run(memory, ops)
          if (expected === 'failed') failed++
          else ran++
          if (JSON.stringify(actual) !== JSON.stringify(expected)) {
            throw new Error(`batch ${ops.map(([name]) => name).join('; ')}: Redis ${JSON.stringify(expected)}, embedded ${JSON.stringify(actual)}`)
          }
        }
        t.same(await state(memory), await state(real), 'the same state afterwards')
      } finally {
        await real.close()
        await memory.close()
      }
    }),
    { numRuns: 40, seed: 17 },
  )
  t.equal(runs, 40)
  // On this seed: most batches run through and are compared value by value; some fail on both, as they must.
  t.ok(ran > 4 * failed && failed > 0, `${ran} batches compared, ${failed} failed on both stores`)
})

t.test('the byte account returns to zero whatever the writes, once every key is gone', async (t) => {
  await fc.assert(
    fc.asyncProperty(batches, async (sequence) => {
      let now = 1_700_000_000_000
      const store = new MemoryStateStore({ now: () => now, maxMembersPerKey: 20 })
      for (const ops of sequence) {
        await run(store, ops)
        now += 60_000
      }
      // Half the keys expire (an hour has passed since the last TTL was set), the rest are deleted.
      now += HOUR
      const clear = store.batch()
      for (const k of KEYS) clear.del(k)
      await clear.exec()
      t.equal(store.size, 0)
      t.equal(store.owners, 0)
      t.equal(store.bytes, 0, 'nothing left, nothing accounted')
    }),
    { numRuns: 100, seed: 18 },
  )
})
