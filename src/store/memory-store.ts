import { PendingSlot } from './state-store.js'
import { type Pending, type StateStore, type StoreBatch } from '../engine/ports.js'

interface Values {
  string: string
  hash: Map<string, string>
  set: Set<string>
  zset: Map<string, number>
}
type Kind = keyof Values

/**
 * Approximate heap cost, in bytes, of what the store keeps beyond the characters of its strings (counted one byte
 * each, as V8 stores Latin-1 text): a key's entry (Entry object, map slot, string headers, the value's container),
 * and one member of a hash, set or sorted set (its map or set slot, string headers, a score). An estimate that stays
 * cheap on every write, calibrated with `scripts/bench/store-bytes.ts` (the heap grows 1.0 to 1.1 times the
 * accounted bytes on Node 20).
 */
export const ENTRY_OVERHEAD_BYTES = 256
export const MEMBER_OVERHEAD_BYTES = 64

/**
 * A key's value and, in epoch ms, when it stops existing (undefined = no expiry). One object of one shape
 * per key keeps a subject's state small and property access monomorphic. `used` is the second-chance bit
 * of the eviction clock; `bytes` is the entry's accounted size, key included.
 */
class Entry<K extends Kind = Kind> {
  used = false
  constructor(
    readonly kind: K,
    readonly value: Values[K],
    public expiresAt: number | undefined,
    public bytes: number,
  ) {}
}

/** A string entry, sized at creation: its key and value never change afterwards. */
const stringEntry = (key: string, value: string, expiresAt: number | undefined) =>
  new Entry('string', value, expiresAt, ENTRY_OVERHEAD_BYTES + key.length + value.length)

export interface MemoryStateStoreOptions {
  now?: () => number
  /** Keys kept at most; the least recently used go first. Default 500,000. */
  maxKeys?: number
  /** Accounted bytes kept at most (see ENTRY_OVERHEAD_BYTES); the least recently used keys go first. Default 96 MiB. */
  maxBytes?: number
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
  private readonly maxBytes: number
  private accounted = 0
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
    this.maxBytes = options.maxBytes ?? 96 * 1024 * 1024
  }

  /** Approximate bytes the keys held (expired ones included until they go) take on the heap. */
  get bytes(): number {
    return this.accounted
  }

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
      this.remove(key, entry)
      return undefined
    }
    entry.used = true
    return entry
  }

  private put(key: string, entry: Entry): void {
    const previous = this.entries.get(key)
    if (previous) this.accounted -= previous.bytes
    entry.used = previous !== undefined
    this.entries.set(key, entry)
    this.accounted += entry.bytes
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key)
    this.accounted -= entry.bytes
  }

  /** Adds `delta` bytes to a live entry's account (a member added, changed or removed). */
  private grow(entry: Entry, delta: number): void {
    entry.bytes += delta
    this.accounted += delta
  }

  /**
   * Evicts until both bounds hold. Runs after a whole batch, so that no operation works on an entry that an
   * eviction has just detached; one batch may overshoot by its own writes.
   */
  private fit(): void {
    while ((this.entries.size > this.maxKeys || this.accounted > this.maxBytes) && this.entries.size > 0) this.evictOne()
  }

  private evictOne(): void {
    for (const [key, entry] of this.entries) {
      if (!entry.used) {
        this.remove(key, entry)
        return
      }
      entry.used = false
      this.entries.delete(key)
      this.entries.set(key, entry)
    }
  }

  private typed<K extends Kind>(key: string, kind: K): (Entry<K>) | undefined {
    const entry = this.live(key)
    if (!entry) return undefined
    if (entry.kind !== kind) throw new WrongTypeError(key, kind)
    return entry as Entry<K>
  }

  private create<K extends Kind>(key: string, kind: K, make: () => Values[K], ttlMs: number): Entry<K> {
    const entry = this.live(key)
    if (entry) {
      if (entry.kind !== kind) throw new WrongTypeError(key, kind)
      // Like PEXPIRE after HSET/SADD/ZADD: a positive TTL restarts the clock, none keeps the key's current expiry.
      // The entry is updated in place; live() has already marked it used.
      if (ttlMs > 0) entry.expiresAt = this.now() + ttlMs
      return entry as Entry<K>
    }
    const created = new Entry(kind, make(), this.expiry(ttlMs), ENTRY_OVERHEAD_BYTES + key.length)
    this.put(key, created)
    return created as Entry<K>
  }

  /** Sets a hash field, accounting for the change in size. */
  private hashSet(entry: Entry<'hash'>, field: string, value: string): void {
    const hash = entry.value
    const old = hash.get(field)
    this.grow(entry, old === undefined ? MEMBER_OVERHEAD_BYTES + field.length + value.length : value.length - old.length)
    hash.set(field, value)
  }

  private expiry(ttlMs: number): number | undefined {
    return ttlMs > 0 ? this.now() + ttlMs : undefined
  }

  private trim(entry: Entry<'hash'> | Entry<'set'>): void {
    // Insertion order is age order, so the oldest members go first.
    const members = entry.value
    while (members.size > this.maxMembers) {
      const oldest = members.keys().next().value as string
      const value = members instanceof Map ? members.get(oldest)! : ''
      members.delete(oldest)
      this.grow(entry, -(MEMBER_OVERHEAD_BYTES + oldest.length + value.length))
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
          store.put(key, stringEntry(key, value, store.expiry(ttlMs)))
        })
      },
      setIfAbsent: (key, value, ttlMs) =>
        queue(() => {
          if (store.live(key)) return false
          store.put(key, stringEntry(key, value, store.expiry(ttlMs)))
          return true
        }),
      getSet: (key, value, ttlMs) =>
        queue(() => {
          const previous = store.typed(key, 'string')?.value ?? null
          store.put(key, stringEntry(key, value, store.expiry(ttlMs)))
          return previous
        }),
      del: (key) =>
        queue(() => {
          const entry = store.live(key)
          if (!entry) return 0
          store.remove(key, entry)
          return 1
        }),
      incrBy: (key, by, ttlMs) =>
        queue(() => {
          const current = store.typed(key, 'string')
          const n = current === undefined ? 0 : Number(current.value)
          if (!Number.isFinite(n)) throw new Error(`ERR value at "${key}" is not a number`)
          const next = n + by
          // Like INCRBY followed by PEXPIRE only when a TTL is given: without one the key keeps its expiry.
          const expiresAt = ttlMs > 0 ? store.now() + ttlMs : current?.expiresAt
          store.put(key, stringEntry(key, String(next), expiresAt))
          return next
        }),
      hGetAll: (key) =>
        queue(() => {
          const record: Record<string, string> = Object.create(null)
          for (const [field, value] of store.typed(key, 'hash')?.value ?? []) record[field] = value
          return record
        }),
      hSet: (key, fields, ttlMs) => {
        ops.push(() => {
          const entry = store.create(key, 'hash', () => new Map(), ttlMs)
          for (const [field, value] of Object.entries(fields)) {
            // Re-inserted, so that the most recently written fields are the ones trimming keeps.
            const old = entry.value.get(field)
            if (old !== undefined) {
              entry.value.delete(field)
              store.grow(entry, -(MEMBER_OVERHEAD_BYTES + field.length + old.length))
            }
            store.hashSet(entry, field, value)
          }
          store.trim(entry)
        })
      },
      hDel: (key, field) =>
        queue(() => {
          const entry = store.typed(key, 'hash')
          const old = entry?.value.get(field)
          if (!entry || old === undefined) return 0
          entry.value.delete(field)
          store.grow(entry, -(MEMBER_OVERHEAD_BYTES + field.length + old.length))
          if (entry.value.size === 0) store.remove(key, entry)
          return 1
        }),
      hIncrBy: (key, field, by, ttlMs) =>
        queue(() => {
          const entry = store.create(key, 'hash', () => new Map(), ttlMs)
          const next = Number(entry.value.get(field) ?? 0) + by
          store.hashSet(entry, field, String(next))
          store.trim(entry)
          return next
        }),
      hIncrClamped: (key, field, by, initial, min, max, ttlMs) =>
        queue(() => {
          const entry = store.create(key, 'hash', () => new Map(), ttlMs)
          const raw = entry.value.get(field)
          const current = raw === undefined ? initial : Number(raw)
          const next = Math.min(max, Math.max(min, current + by))
          store.hashSet(entry, field, String(next))
          store.trim(entry)
          return next
        }),
      sAdd: (key, member, ttlMs) =>
        queue(() => {
          const entry = store.create(key, 'set', () => new Set(), ttlMs)
          const set = entry.value
          const added = !set.delete(member)
          set.add(member)
          if (added) {
            store.grow(entry, MEMBER_OVERHEAD_BYTES + member.length)
            store.trim(entry)
          }
          return added
        }),
      sRem: (key, member) =>
        queue(() => {
          const entry = store.typed(key, 'set')
          if (!entry || !entry.value.delete(member)) return 0
          store.grow(entry, -(MEMBER_OVERHEAD_BYTES + member.length))
          if (entry.value.size === 0) store.remove(key, entry)
          return 1
        }),
      sMembers: (key) => queue(() => [...(store.typed(key, 'set')?.value ?? [])]),
      sCard: (key) => queue(() => store.typed(key, 'set')?.value.size ?? 0),
      zAdd: (key, score, member, ttlMs) => {
        ops.push(() => {
          const entry = store.create(key, 'zset', () => new Map(), ttlMs)
          const zset = entry.value
          if (!zset.delete(member)) store.grow(entry, MEMBER_OVERHEAD_BYTES + member.length)
          zset.set(member, score)
          if (zset.size > store.maxMembers) {
            // Sorted sets keep their highest scores (the most recent events in time windows).
            const sorted = [...zset.entries()].sort((a, b) => a[1] - b[1])
            for (const [m] of sorted.slice(0, zset.size - store.maxMembers)) {
              zset.delete(m)
              store.grow(entry, -(MEMBER_OVERHEAD_BYTES + m.length))
            }
          }
        })
      },
      zRemRangeByScore: (key, min, max) =>
        queue(() => {
          const entry = store.typed(key, 'zset')
          if (!entry) return 0
          let removed = 0
          for (const [member, score] of entry.value) {
            if (score >= min && score <= max) {
              entry.value.delete(member)
              store.grow(entry, -(MEMBER_OVERHEAD_BYTES + member.length))
              removed++
            }
          }
          if (entry.value.size === 0) store.remove(key, entry)
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
        try {
          for (const op of ops) op()
        } finally {
          store.fit()
        }
      },
    }
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('store is closed')
  }

  async close(): Promise<void> {
    this.closed = true
    this.entries.clear()
    this.accounted = 0
  }
}
