import { PendingSlot, type Pending, type StateStore, type StoreBatch } from './state-store.js'

interface Values {
  string: string
  hash: Map<string, string>
  set: Set<string>
  zset: Map<string, number>
}
type Kind = keyof Values

/**
 * A key's value and, in epoch ms, when it stops existing (undefined = no expiry). One object of one shape
 * per key keeps a subject's state small and property access monomorphic. `used` is the second-chance bit
 * of the eviction clock.
 */
class Entry {
  used = false
  constructor(
    readonly kind: Kind,
    readonly value: Values[Kind],
    public expiresAt: number | undefined,
  ) {}
}

export interface MemoryStateStoreOptions {
  now?: () => number
  /** Keys kept at most; the least recently used go first. Default 500,000. */
  maxKeys?: number
  /** Members kept at most per set, hash or sorted set. Default 10,000. */
  maxMembersPerKey?: number
}

class WrongTypeError extends Error {
  constructor(key: string, expected: string) {
    super(`WRONGTYPE: key "${key}" does not hold a ${expected}`)
    this.name = 'WrongTypeError'
  }
}

/**
 * The embedded store: everything in this process, bounded so that it can run for weeks.
 * Expiry follows the injected clock, so tests move time instead of waiting. A batch runs all of its
 * operations synchronously inside exec(), so it is atomic with respect to other batches.
 */
export class MemoryStateStore implements StateStore {
  readonly kind = 'memory' as const
  private readonly now: () => number
  private readonly maxMembers: number
  private readonly maxKeys: number
  /**
   * Evicted by the clock (second-chance) approximation of least-recently-used: a read only sets the entry's
   * `used` bit, and eviction walks keys in insertion order, moving used ones to the end with the bit cleared.
   * Reordering the map on every read would rehash it constantly.
   */
  private readonly entries = new Map<string, Entry>()
  private closed = false

  constructor(options: MemoryStateStoreOptions = {}) {
    this.now = options.now ?? Date.now
    this.maxMembers = options.maxMembersPerKey ?? 10_000
    this.maxKeys = options.maxKeys ?? 500_000
  }

  /** Number of live keys (expired ones are dropped on the way). */
  /** Number of live keys; counting is not a use, so it leaves the eviction order alone. */
  get size(): number {
    const now = this.now()
    let n = 0
    for (const entry of this.entries.values()) if (entry.expiresAt === undefined || entry.expiresAt > now) n++
    return n
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.now()) {
      this.entries.delete(key)
      return undefined
    }
    entry.used = true
    return entry
  }

  private put(key: string, entry: Entry): void {
    const replacing = this.entries.has(key)
    entry.used = replacing
    this.entries.set(key, entry)
    if (!replacing && this.entries.size > this.maxKeys) this.evictOne()
  }

  private evictOne(): void {
    for (const [key, entry] of this.entries) {
      this.entries.delete(key)
      if (!entry.used) return
      entry.used = false
      this.entries.set(key, entry)
    }
  }

  private typed<K extends Kind>(key: string, kind: K): { value: Values[K] } | undefined {
    const entry = this.live(key)
    if (!entry) return undefined
    if (entry.kind !== kind) throw new WrongTypeError(key, kind)
    return entry as unknown as { value: Values[K] }
  }

  private create<K extends Kind>(key: string, kind: K, make: () => Values[K], ttlMs: number): Values[K] {
    const entry = this.live(key)
    if (entry) {
      if (entry.kind !== kind) throw new WrongTypeError(key, kind)
      // Like PEXPIRE after HSET/SADD/ZADD: a positive TTL restarts the clock, none keeps the key's current expiry.
      // The entry is updated in place; live() has already marked it used.
      if (ttlMs > 0) entry.expiresAt = this.now() + ttlMs
      return entry.value as Values[K]
    }
    const value = make()
    this.put(key, new Entry(kind, value, this.expiry(ttlMs)))
    return value
  }

  private expiry(ttlMs: number): number | undefined {
    return ttlMs > 0 ? this.now() + ttlMs : undefined
  }

  private trim(members: Map<string, unknown> | Set<string>): void {
    // Insertion order is age order, so the oldest members go first.
    while (members.size > this.maxMembers) {
      const oldest = members.keys().next().value as string
      members.delete(oldest)
    }
  }

  batch(): StoreBatch {
    const ops: (() => void)[] = []
    const queue = <T>(run: () => T): Pending<T> => {
      const slot = new PendingSlot<T>()
      ops.push(() => slot.resolve(run()))
      return slot
    }
    const store = this
    return {
      get: (key) => queue(() => store.typed(key, 'string')?.value ?? null),
      set: (key, value, ttlMs) => {
        ops.push(() => {
          store.put(key, new Entry('string', value, store.expiry(ttlMs)))
        })
      },
      setIfAbsent: (key, value, ttlMs) =>
        queue(() => {
          if (store.live(key)) return false
          store.put(key, new Entry('string', value, store.expiry(ttlMs)))
          return true
        }),
      getSet: (key, value, ttlMs) =>
        queue(() => {
          const previous = store.typed(key, 'string')?.value ?? null
          store.put(key, new Entry('string', value, store.expiry(ttlMs)))
          return previous
        }),
      del: (key) => queue(() => (store.live(key) && store.entries.delete(key) ? 1 : 0)),
      incrBy: (key, by, ttlMs) =>
        queue(() => {
          const current = store.typed(key, 'string')
          const n = current === undefined ? 0 : Number(current.value)
          if (!Number.isFinite(n)) throw new Error(`ERR value at "${key}" is not a number`)
          const next = n + by
          // Like INCRBY followed by PEXPIRE only when a TTL is given: without one the key keeps its expiry.
          const expiresAt = ttlMs > 0 ? store.now() + ttlMs : (current as Entry | undefined)?.expiresAt
          store.put(key, new Entry('string', String(next), expiresAt))
          return next
        }),
      hGetAll: (key) => queue(() => Object.fromEntries(store.typed(key, 'hash')?.value ?? [])),
      hSet: (key, fields, ttlMs) => {
        ops.push(() => {
          const hash = store.create(key, 'hash', () => new Map(), ttlMs)
          for (const [field, value] of Object.entries(fields)) {
            hash.delete(field)
            hash.set(field, value)
          }
          store.trim(hash)
        })
      },
      hDel: (key, field) =>
        queue(() => {
          const hash = store.typed(key, 'hash')?.value
          if (!hash || !hash.delete(field)) return 0
          if (hash.size === 0) store.entries.delete(key)
          return 1
        }),
      hIncrBy: (key, field, by, ttlMs) =>
        queue(() => {
          const hash = store.create(key, 'hash', () => new Map(), ttlMs)
          const next = Number(hash.get(field) ?? 0) + by
          hash.set(field, String(next))
          store.trim(hash)
          return next
        }),
      hIncrClamped: (key, field, by, initial, min, max, ttlMs) =>
        queue(() => {
          const hash = store.create(key, 'hash', () => new Map(), ttlMs)
          const raw = hash.get(field)
          const current = raw === undefined ? initial : Number(raw)
          const next = Math.min(max, Math.max(min, current + by))
          hash.set(field, String(next))
          store.trim(hash)
          return next
        }),
      sAdd: (key, member, ttlMs) =>
        queue(() => {
          const set = store.create(key, 'set', () => new Set(), ttlMs)
          const added = !set.has(member)
          set.delete(member)
          set.add(member)
          store.trim(set)
          return added
        }),
      sRem: (key, member) =>
        queue(() => {
          const set = store.typed(key, 'set')?.value
          if (!set || !set.delete(member)) return 0
          if (set.size === 0) store.entries.delete(key)
          return 1
        }),
      sMembers: (key) => queue(() => [...(store.typed(key, 'set')?.value ?? [])]),
      sCard: (key) => queue(() => store.typed(key, 'set')?.value.size ?? 0),
      zAdd: (key, score, member, ttlMs) => {
        ops.push(() => {
          const zset = store.create(key, 'zset', () => new Map(), ttlMs)
          zset.delete(member)
          zset.set(member, score)
          if (zset.size > store.maxMembers) {
            // Sorted sets keep their highest scores (the most recent events in time windows).
            const sorted = [...zset.entries()].sort((a, b) => a[1] - b[1])
            for (const [m] of sorted.slice(0, zset.size - store.maxMembers)) zset.delete(m)
          }
        })
      },
      zRemRangeByScore: (key, min, max) =>
        queue(() => {
          const zset = store.typed(key, 'zset')?.value
          if (!zset) return 0
          let removed = 0
          for (const [member, score] of zset) {
            if (score >= min && score <= max) {
              zset.delete(member)
              removed++
            }
          }
          if (zset.size === 0) store.entries.delete(key)
          return removed
        }),
      zCount: (key, min, max) =>
        queue(() => {
          let n = 0
          for (const score of store.typed(key, 'zset')?.value.values() ?? []) if (score >= min && score <= max) n++
          return n
        }),
      zRangeByScore: (key, min, max) =>
        queue(() =>
          [...(store.typed(key, 'zset')?.value ?? [])]
            .filter(([, score]) => score >= min && score <= max)
            .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
            .map(([member]) => member),
        ),
      pTtl: (key) =>
        queue(() => {
          const entry = store.live(key)
          if (!entry) return -2
          return entry.expiresAt === undefined ? -1 : entry.expiresAt - store.now()
        }),
      async exec() {
        if (store.closed) throw new Error('store is closed')
        for (const op of ops) op()
      },
    }
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('store is closed')
  }

  async close(): Promise<void> {
    this.closed = true
    this.entries.clear()
  }
}
