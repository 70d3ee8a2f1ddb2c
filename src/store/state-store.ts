/**
 * One interface for all state the PDP keeps between decisions: device registry, last locations,
 * behaviour baselines, revocations, grants, lockouts, event windows.
 *
 * Everything goes through batches: callers queue the reads and writes one decision needs and run
 * them in a single round trip (one Lua script call on Redis). Writes are expressed as atomic
 * primitives that return the previous or resulting value (getSet, incrBy, sAdd ...), so replicas
 * sharing one Redis never race on a read-modify-write.
 *
 * Keys are plain strings chosen by callers (`device:{subject}:{id}`); drivers add their own prefix.
 * TTLs are in milliseconds and bound how long a key lives after its last write; logic that depends
 * on time (expiry of a grant, a lockout's end) keeps its own timestamps and compares them with the
 * injected clock, so it does not depend on the store's clock.
 */

/** A value that becomes readable once its batch has run. */
export interface Pending<T> {
  readonly value: T
}

/** The Pending a driver hands out and fills in when its batch runs. */
export class PendingSlot<T> implements Pending<T> {
  private set = false
  private result: T | undefined
  resolve(value: T): void {
    this.result = value
    this.set = true
  }
  get value(): T {
    if (!this.set) throw new Error('store value read before its batch ran (await batch.exec() first)')
    return this.result as T
  }
}

export interface StoreBatch {
  get(key: string): Pending<string | null>
  set(key: string, value: string, ttlMs: number): void
  /** Sets only when absent; resolves true when this call set it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Pending<boolean>
  /** Sets and returns the previous value. */
  getSet(key: string, value: string, ttlMs: number): Pending<string | null>
  del(key: string): Pending<number>
  incrBy(key: string, by: number, ttlMs: number): Pending<number>
  /** Fields by name, in an object without a prototype: a field named "constructor" or "__proto__" is just a field. */
  hGetAll(key: string): Pending<Record<string, string>>
  hSet(key: string, fields: Record<string, string>, ttlMs: number): void
  hDel(key: string, field: string): Pending<number>
  hIncrBy(key: string, field: string, by: number, ttlMs: number): Pending<number>
  /** Adds `by` to a numeric hash field (missing counts as `initial`) and clamps to [min, max]; returns the new value. */
  hIncrClamped(key: string, field: string, by: number, initial: number, min: number, max: number, ttlMs: number): Pending<number>
  /** Resolves true when the member was not in the set before. */
  sAdd(key: string, member: string, ttlMs: number): Pending<boolean>
  sRem(key: string, member: string): Pending<number>
  sMembers(key: string): Pending<string[]>
  sCard(key: string): Pending<number>
  zAdd(key: string, score: number, member: string, ttlMs: number): void
  zRemRangeByScore(key: string, min: number, max: number): Pending<number>
  zCount(key: string, min: number, max: number): Pending<number>
  /** Members with min <= score <= max, lowest score first. */
  zRangeByScore(key: string, min: number, max: number): Pending<string[]>
  /** Remaining time to live in ms: -1 when the key has none, -2 when it does not exist. */
  pTtl(key: string): Pending<number>
  /**
   * Runs every queued operation in one round trip, atomically. Rejects with StoreUnavailableError
   * when the store does not answer within its time-out; then no Pending value may be read.
   */
  exec(): Promise<void>
}

export interface StateStore {
  readonly kind: 'memory' | 'redis'
  batch(): StoreBatch
  /** Resolves when the store answers within its time-out; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>
  close(): Promise<void>
}

/** The store did not answer in time or refused the operation; callers turn this into a defined verdict. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreUnavailableError'
  }
}
