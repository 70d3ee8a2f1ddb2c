import type { Pending, StoreBatch } from './ports.js'

const derived = <T, U>(from: Pending<T>, map: (value: T) => U): Pending<U> => ({
  get value() {
    return map(from.value)
  },
})

const clamp = (n: number, min: number, max: number) => Math.min(max, Math.max(min, n))

/**
 * A view of a batch that writes nothing: every write becomes the read that tells what it would have
 * returned (an increment reads the counter and adds, a set-add reads the members). A decision about a
 * subject nobody vouched for runs on it, so it is answered exactly as any other, but changes no state.
 */
export function readOnlyBatch(batch: StoreBatch): StoreBatch {
  return {
    get: (key) => batch.get(key),
    set: () => {},
    setIfAbsent: (key) => derived(batch.get(key), (v) => v === null),
    getSet: (key) => batch.get(key),
    del: (key) => derived(batch.pTtl(key), (ttl) => (ttl === -2 ? 0 : 1)),
    incrBy: (key, by) => derived(batch.get(key), (v) => Number(v ?? 0) + by),
    hGetAll: (key) => batch.hGetAll(key),
    hSet: () => {},
    hDel: (key, field) => derived(batch.hGetAll(key), (h) => (Object.hasOwn(h, field) ? 1 : 0)),
    hIncrBy: (key, field, by) => derived(batch.hGetAll(key), (h) => Number(Object.hasOwn(h, field) ? h[field] : 0) + by),
    hIncrClamped: (key, field, by, initial, min, max) =>
      derived(batch.hGetAll(key), (h) => clamp((Object.hasOwn(h, field) ? Number(h[field]) : initial) + by, min, max)),
    sAdd: (key, member) => derived(batch.sMembers(key), (members) => !members.includes(member)),
    sRem: (key, member) => derived(batch.sMembers(key), (members) => (members.includes(member) ? 1 : 0)),
    sMembers: (key) => batch.sMembers(key),
    sCard: (key) => batch.sCard(key),
    zAdd: () => {},
    zRemRangeByScore: (key, min, max) => batch.zCount(key, min, max),
    zCount: (key, min, max) => batch.zCount(key, min, max),
    zRangeByScore: (key, min, max) => batch.zRangeByScore(key, min, max),
    pTtl: (key) => batch.pTtl(key),
    exec: () => batch.exec(),
  }
}
