import { Redis, type ChainableCommander, type RedisOptions } from 'ioredis'
import { StoreUnavailableError, type Pending, type StateStore, type StoreBatch } from './state-store.js'

export interface RedisStateStoreOptions {
  /** The Redis server; with `sentinels`, only its credentials, database number and TLS are used. */
  url?: string
  /** Redis Sentinel: ask these sentinels where the master named `sentinelMaster` is, and follow fail-overs. */
  sentinels?: { host: string; port: number }[]
  sentinelMaster?: string
  /** Prepended to every key, so several deployments (or tests) can share one Redis. Default `pdp:`. */
  prefix?: string
  /** Longest wait for one round trip; past it the call fails with StoreUnavailableError. Default 50 ms. */
  timeoutMs?: number
  /** Longest wait for the first connection at start-up. Default 2000 ms. */
  connectTimeoutMs?: number
  /** Connection errors, for logging; the store never throws them at callers. */
  onError?: (error: Error) => void
}

/** Clamped increment of a hash field, atomic across replicas; returns the new value as a string (Lua numbers lose fractions). */
const HINCR_CLAMPED = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local n = tonumber(ARGV[3])
if raw then n = tonumber(raw) or n end
n = n + tonumber(ARGV[2])
local lo, hi = tonumber(ARGV[4]), tonumber(ARGV[5])
if n < lo then n = lo end
if n > hi then n = hi end
local s = string.format('%.17g', n)
redis.call('HSET', KEYS[1], ARGV[1], s)
if tonumber(ARGV[6]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
return s
`

type Parser = (raw: unknown) => unknown

interface Clamped {
  hincrclamped(key: string, field: string, by: number, initial: number, min: number, max: number, ttlMs: number): ChainableCommander
}

class Slot<T> implements Pending<T> {
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

const asNumber: Parser = (raw) => Number(raw)
const asNullableString: Parser = (raw) => (raw === null || raw === undefined ? null : String(raw))

/**
 * Shared state for replicas. A batch is one MULTI/EXEC transaction: one round trip, applied
 * atomically, each write an atomic primitive (or a Lua script), so replicas never lose updates.
 * A Redis that is down or slow fails the call within `timeoutMs`; commands are never queued
 * while disconnected, so nothing waits for a reconnect.
 */
export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const
  private readonly timeoutMs: number

  private constructor(
    readonly client: Redis,
    timeoutMs: number,
    private readonly ownsClient: boolean,
  ) {
    this.timeoutMs = timeoutMs
    client.defineCommand('hincrclamped', { numberOfKeys: 1, lua: HINCR_CLAMPED })
  }

  static async connect(options: RedisStateStoreOptions): Promise<RedisStateStore> {
    const common: RedisOptions = {
      keyPrefix: options.prefix ?? 'pdp:',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: options.connectTimeoutMs ?? 2000,
      lazyConnect: true,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    }
    let client: Redis
    if (options.sentinels && options.sentinels.length > 0) {
      const url = options.url === undefined ? undefined : new URL(options.url)
      const sentinel: RedisOptions = { ...common, sentinels: options.sentinels, name: options.sentinelMaster ?? 'mymaster' }
      if (url?.username) sentinel.username = decodeURIComponent(url.username)
      if (url?.password) sentinel.password = decodeURIComponent(url.password)
      if (url && url.pathname.length > 1) sentinel.db = Number(url.pathname.slice(1))
      if (url?.protocol === 'rediss:') sentinel.tls = {}
      client = new Redis(sentinel)
    } else if (options.url !== undefined) {
      client = new Redis(options.url, common)
    } else {
      throw new TypeError('RedisStateStore needs a url or sentinels')
    }
    client.on('error', (err: Error) => options.onError?.(err))
    const store = new RedisStateStore(client, options.timeoutMs ?? 50, true)
    // Start-up waits a bounded time for Redis; if it is not there yet the PDP still starts (readiness
    // reports the store) and ioredis keeps reconnecting in the background.
    const connectTimeoutMs = options.connectTimeoutMs ?? 2000
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      client.connect().catch((err: Error) => options.onError?.(err)),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          options.onError?.(new Error(`Redis not ready after ${connectTimeoutMs} ms; continuing, decisions fail per PDP_STORE_FAILURE until it is`))
          resolve()
        }, connectTimeoutMs)
      }),
    ])
    clearTimeout(timer)
    return store
  }

  /** Wraps a client the caller owns (and closes). It should be created with enableOfflineQueue: false. */
  static fromClient(client: Redis, timeoutMs = 50): RedisStateStore {
    return new RedisStateStore(client, timeoutMs, false)
  }

  private bounded<T>(work: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(`Redis did not answer ${what} within ${this.timeoutMs} ms`)), this.timeoutMs)
    })
    // The losing promise may still settle later; its outcome no longer matters to anyone.
    work.catch(() => {})
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
  }

  batch(): StoreBatch {
    const multi = this.client.multi()
    const slots: { slot: Slot<unknown> | undefined; parse: Parser }[] = []
    const add = <T>(queue: () => unknown, parse: Parser = (r) => r, keep = true): Pending<T> => {
      queue()
      const slot = keep ? new Slot<unknown>() : undefined
      slots.push({ slot, parse })
      return slot as unknown as Pending<T>
    }
    const expire = (key: string, ttlMs: number) => {
      if (ttlMs > 0) add(() => multi.pexpire(key, Math.ceil(ttlMs)), undefined, false)
    }
    const incr = (key: string, by: number) => (Number.isInteger(by) ? multi.incrby(key, by) : multi.incrbyfloat(key, by))
    const hincr = (key: string, field: string, by: number) =>
      Number.isInteger(by) ? multi.hincrby(key, field, by) : multi.hincrbyfloat(key, field, by)
    const self = this
    return {
      get: (key) => add(() => multi.get(key), asNullableString),
      set: (key, value, ttlMs) => {
        add(() => (ttlMs > 0 ? multi.set(key, value, 'PX', Math.ceil(ttlMs)) : multi.set(key, value)), undefined, false)
      },
      setIfAbsent: (key, value, ttlMs) =>
        add(() => (ttlMs > 0 ? multi.set(key, value, 'PX', Math.ceil(ttlMs), 'NX') : multi.set(key, value, 'NX')), (r) => r === 'OK'),
      getSet: (key, value, ttlMs) =>
        add(() => (ttlMs > 0 ? multi.set(key, value, 'PX', Math.ceil(ttlMs), 'GET') : multi.set(key, value, 'GET')), asNullableString),
      del: (key) => add(() => multi.del(key), asNumber),
      incrBy: (key, by, ttlMs) => {
        const pending = add<number>(() => incr(key, by), asNumber)
        expire(key, ttlMs)
        return pending
      },
      hGetAll: (key) => add(() => multi.hgetall(key), (r) => ({ ...(r as Record<string, string>) })),
      hSet: (key, fields, ttlMs) => {
        if (Object.keys(fields).length === 0) return
        add(() => multi.hset(key, fields), undefined, false)
        expire(key, ttlMs)
      },
      hDel: (key, field) => add(() => multi.hdel(key, field), asNumber),
      hIncrBy: (key, field, by, ttlMs) => {
        const pending = add<number>(() => hincr(key, field, by), asNumber)
        expire(key, ttlMs)
        return pending
      },
      hIncrClamped: (key, field, by, initial, min, max, ttlMs) =>
        add(() => (multi as unknown as Clamped).hincrclamped(key, field, by, initial, min, max, Math.ceil(ttlMs)), asNumber),
      sAdd: (key, member, ttlMs) => {
        const pending = add<boolean>(() => multi.sadd(key, member), (r) => Number(r) === 1)
        expire(key, ttlMs)
        return pending
      },
      sRem: (key, member) => add(() => multi.srem(key, member), asNumber),
      sMembers: (key) => add(() => multi.smembers(key), (r) => [...(r as string[])]),
      sCard: (key) => add(() => multi.scard(key), asNumber),
      zAdd: (key, score, member, ttlMs) => {
        add(() => multi.zadd(key, score, member), undefined, false)
        expire(key, ttlMs)
      },
      zRemRangeByScore: (key, min, max) => add(() => multi.zremrangebyscore(key, min, max), asNumber),
      zCount: (key, min, max) => add(() => multi.zcount(key, min, max), asNumber),
      zRangeByScore: (key, min, max) => add(() => multi.zrangebyscore(key, min, max), (r) => [...(r as string[])]),
      pTtl: (key) => add(() => multi.pttl(key), asNumber),
      async exec() {
        if (slots.length === 0) return
        let results: [Error | null, unknown][] | null
        try {
          results = await self.bounded(multi.exec(), 'a batch')
        } catch (err) {
          if (err instanceof StoreUnavailableError) throw err
          throw new StoreUnavailableError(`Redis batch failed: ${(err as Error).message}`, { cause: err })
        }
        if (!results) throw new StoreUnavailableError('Redis aborted the transaction')
        results.forEach(([err], i) => {
          if (err) throw new Error(`Redis command ${i} failed: ${err.message}`)
        })
        results.forEach(([, raw], i) => {
          const { slot, parse } = slots[i]!
          slot?.resolve(parse(raw))
        })
      },
    }
  }

  async ping(): Promise<void> {
    try {
      await this.bounded(this.client.ping(), 'PING')
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err
      throw new StoreUnavailableError(`Redis is unavailable: ${(err as Error).message}`, { cause: err })
    }
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return
    try {
      await this.bounded(this.client.quit(), 'QUIT')
    } catch {
      this.client.disconnect()
    }
  }
}
