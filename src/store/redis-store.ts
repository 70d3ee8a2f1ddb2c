import calculateSlot from 'cluster-key-slot'
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis'
import { NO_FIELDS, PendingSlot, StoreUnavailableError } from './state-store.js'
import { type Pending, type StateStore, type StoreBatch } from '../engine/ports.js'

export interface RedisStateStoreOptions {
  /** The Redis server; with `sentinels` only its credentials, database number and TLS are used, with `clusterNodes` only its credentials and TLS. */
  url?: string
  /** Redis Sentinel: ask these sentinels where the master named `sentinelMaster` is, and follow fail-overs. */
  sentinels?: { host: string; port: number }[]
  sentinelMaster?: string
  /** Redis Cluster: some of its nodes (the rest are discovered); a batch then runs as one script per hash slot. */
  clusterNodes?: { host: string; port: number }[]
  /**
   * Prepended to every key, so several deployments (or tests) can share one Redis. Default `pdp:`. On a cluster it
   * must hold no brace: the keys' hash tags (`{alice}`) would otherwise not be the first ones Redis sees.
   */
  prefix?: string
  /** Longest wait for one round trip; past it the call fails with StoreUnavailableError. Default 50 ms. */
  timeoutMs?: number
  /** Longest wait for the first connection at start-up. Default 2000 ms. */
  connectTimeoutMs?: number
  /** Connection errors, for logging; the store never throws them at callers. */
  onError?: (error: Error) => void
}

/**
 * Runs a whole batch as one script call: KEYS holds one key per operation, ARGV each operation's name and
 * arguments in order. One command instead of one per operation (plus MULTI, EXEC and the PEXPIREs) is what
 * keeps the PDP's CPU per decision down; a script is as atomic as MULTI/EXEC. Every operation appends one
 * result, so that positions match the queued operations (false becomes a nil reply without ending the array).
 */
const BATCH = `
local out = {}
local a = 1
local function expire(key, ttl)
  if tonumber(ttl) > 0 then redis.call('PEXPIRE', key, ttl) end
end
local function setx(key, value, ttl, ...)
  if tonumber(ttl) > 0 then return redis.call('SET', key, value, 'PX', ttl, ...) end
  return redis.call('SET', key, value, ...)
end
for k = 1, #KEYS do
  local key, op = KEYS[k], ARGV[a]
  local r = 0
  if op == 'get' then
    r = redis.call('GET', key); a = a + 1
  elseif op == 'set' then
    setx(key, ARGV[a + 1], ARGV[a + 2]); a = a + 3
  elseif op == 'setnx' then
    r = setx(key, ARGV[a + 1], ARGV[a + 2], 'NX') and 1 or 0; a = a + 3
  elseif op == 'getset' then
    r = setx(key, ARGV[a + 1], ARGV[a + 2], 'GET'); a = a + 3
  elseif op == 'del' then
    r = redis.call('DEL', key); a = a + 1
  elseif op == 'incrby' or op == 'incrbyfloat' then
    r = redis.call(op, key, ARGV[a + 1]); expire(key, ARGV[a + 2]); a = a + 3
  elseif op == 'hgetall' then
    r = redis.call('HGETALL', key); a = a + 1
  elseif op == 'hset' then
    local n = tonumber(ARGV[a + 1])
    redis.call('HSET', key, unpack(ARGV, a + 2, a + 1 + 2 * n)); expire(key, ARGV[a + 2 + 2 * n]); a = a + 3 + 2 * n
  elseif op == 'hdel' then
    r = redis.call('HDEL', key, ARGV[a + 1]); a = a + 2
  elseif op == 'hincrby' or op == 'hincrbyfloat' then
    r = redis.call(op, key, ARGV[a + 1], ARGV[a + 2]); expire(key, ARGV[a + 3]); a = a + 4
  elseif op == 'hincrclamped' then
    local field = ARGV[a + 1]
    local raw = redis.call('HGET', key, field)
    local n = tonumber(ARGV[a + 3])
    if raw then n = tonumber(raw) or n end
    n = n + tonumber(ARGV[a + 2])
    local lo, hi = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
    if n < lo then n = lo end
    if n > hi then n = hi end
    -- As a string: a Lua number in the reply would lose its fraction.
    r = string.format('%.17g', n)
    redis.call('HSET', key, field, r); expire(key, ARGV[a + 6]); a = a + 7
  elseif op == 'sadd' then
    r = redis.call('SADD', key, ARGV[a + 1]); expire(key, ARGV[a + 2]); a = a + 3
  elseif op == 'srem' then
    r = redis.call('SREM', key, ARGV[a + 1]); a = a + 2
  elseif op == 'smembers' then
    r = redis.call('SMEMBERS', key); a = a + 1
  elseif op == 'scard' then
    r = redis.call('SCARD', key); a = a + 1
  elseif op == 'zadd' then
    redis.call('ZADD', key, ARGV[a + 1], ARGV[a + 2]); expire(key, ARGV[a + 3]); a = a + 4
  elseif op == 'zremrangebyscore' or op == 'zcount' or op == 'zrangebyscore' then
    r = redis.call(op, key, ARGV[a + 1], ARGV[a + 2]); a = a + 3
  elseif op == 'pttl' then
    r = redis.call('PTTL', key); a = a + 1
  else
    return redis.error_reply('unknown batch operation ' .. tostring(op))
  end
  out[k] = r
end
return out
`

type Parser = (raw: unknown) => unknown

interface BatchScript {
  pdpbatch(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<unknown[]>
}

/** One queued operation: its key, its name and arguments for BATCH, and where its result goes. */
interface Operation {
  key: string
  args: (string | number)[]
  slot: PendingSlot<unknown> | undefined
  parse: Parser
}

/**
 * Replies that mean the cluster (or server) cannot serve right now rather than that the batch was wrong: a fail-over
 * in progress, slots moving, a node still loading its data. ioredis retries redirections itself; what is left is an outage.
 */
const UNAVAILABLE_REPLY = /^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|LOADING|MASTERDOWN|READONLY|BUSY)\b/

/** A brace in the prefix would come before the keys' own hash tags, and Redis Cluster uses only the first one. */
function assertClusterPrefix(prefix: string): void {
  if (/[{}]/.test(prefix)) throw new TypeError(`the key prefix "${prefix}" holds a brace, which would break the keys' hash tags on Redis Cluster`)
}

const asNumber: Parser = (raw) => Number(raw)
const asNullableString: Parser = (raw) => (raw === null || raw === undefined ? null : String(raw))
const asStrings: Parser = (raw) => (raw as unknown[]).map(String)
/** HGETALL inside a script answers a flat [field, value, ...] list. */
const asRecord: Parser = (raw) => {
  const flat = raw as unknown[]
  if (flat.length === 0) return NO_FIELDS
  const record: Record<string, string> = Object.create(null)
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = String(flat[i + 1])
  return record
}

/**
 * Options for a cluster client: the same bounded, queue-free behaviour as a single connection. REDIS_URL, when given,
 * contributes credentials and TLS (a cluster has only database 0). Reads go to masters, so a decision reads what
 * the last one wrote.
 */
function clusterOptions(common: RedisOptions, url: string | undefined): ClusterOptions {
  const parsed = url === undefined ? undefined : new URL(url)
  if (parsed && parsed.pathname.length > 1 && parsed.pathname !== '/0') throw new TypeError('Redis Cluster has only database 0; REDIS_URL names another')
  const redisOptions: RedisOptions = { connectTimeout: common.connectTimeout!, maxRetriesPerRequest: 0 }
  if (parsed?.username) redisOptions.username = decodeURIComponent(parsed.username)
  if (parsed?.password) redisOptions.password = decodeURIComponent(parsed.password)
  if (parsed?.protocol === 'rediss:') redisOptions.tls = {}
  return {
    keyPrefix: common.keyPrefix!,
    enableOfflineQueue: false,
    lazyConnect: true,
    scaleReads: 'master',
    clusterRetryStrategy: common.retryStrategy!,
    redisOptions,
  }
}

/**
 * Shared state for replicas. A batch is one script call (BATCH above): one round trip, applied
 * atomically, each write an atomic primitive, so replicas never lose updates. On Redis Cluster it is one
 * script call per hash slot, sent together: atomic per slot, that is per subject, address or token.
 * A Redis that is down or slow fails the call within `timeoutMs`; commands are never queued
 * while disconnected, so nothing waits for a reconnect.
 */
export class RedisStateStore implements StateStore {
  readonly kind = 'redis' as const
  private readonly timeoutMs: number
  /** On a cluster, the prefix the client puts before every key: slots are computed on the key Redis sees. */
  private readonly clusterPrefix: string | undefined

  private constructor(
    readonly client: Redis | Cluster,
    timeoutMs: number,
    private readonly ownsClient: boolean,
    prefix: string,
  ) {
    this.timeoutMs = timeoutMs
    this.clusterPrefix = client instanceof Cluster ? prefix : undefined
    client.defineCommand('pdpbatch', { lua: BATCH })
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
    let client: Redis | Cluster
    if (options.clusterNodes && options.clusterNodes.length > 0) {
      if (options.sentinels && options.sentinels.length > 0) throw new TypeError('RedisStateStore takes sentinels or cluster nodes, not both')
      assertClusterPrefix(common.keyPrefix!)
      client = new Cluster(options.clusterNodes, clusterOptions(common, options.url))
    } else if (options.sentinels && options.sentinels.length > 0) {
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
      throw new TypeError('RedisStateStore needs a url, sentinels or cluster nodes')
    }
    client.on('error', (err: Error) => options.onError?.(err))
    // A cluster reports a lost node here rather than as 'error'.
    if (client instanceof Cluster) client.on('node error', (err: Error) => options.onError?.(err))
    const store = new RedisStateStore(client, options.timeoutMs ?? 50, true, common.keyPrefix!)
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

  /** Wraps a client (or cluster client) the caller owns (and closes). It should be created with enableOfflineQueue: false. */
  static fromClient(client: Redis | Cluster, timeoutMs = 50): RedisStateStore {
    const prefix = client.options.keyPrefix ?? ''
    if (client instanceof Cluster) assertClusterPrefix(prefix)
    return new RedisStateStore(client, timeoutMs, false, prefix)
  }

  /** One script call for these operations, which must all be in one slot on a cluster; results in their order. */
  private script(ops: readonly Operation[]): Promise<unknown[]> {
    const keys: string[] = []
    const args: (string | number)[] = []
    for (const op of ops) {
      keys.push(op.key)
      for (const a of op.args) args.push(a)
    }
    return (this.client as unknown as BatchScript).pdpbatch(keys.length, ...keys, ...args)
  }

  /**
   * A cluster runs a script only on keys of one slot, so the batch runs as one script per slot, all sent at once:
   * one round trip per slot the batch touches. The keys' hash tags put one subject's (one address's, one token's)
   * keys in one slot, so what must be atomic together is; operations keep their order within a slot.
   */
  private async scriptsBySlot(ops: readonly Operation[], prefix: string): Promise<unknown[]> {
    const groups = new Map<number, number[]>()
    ops.forEach((op, i) => {
      const slot = calculateSlot(prefix + op.key)
      const group = groups.get(slot)
      if (group) group.push(i)
      else groups.set(slot, [i])
    })
    if (groups.size === 1) return this.script(ops)
    const results = new Array<unknown>(ops.length)
    await Promise.all(
      [...groups.values()].map(async (indices) => {
        const reply = await this.script(indices.map((i) => ops[i]!))
        indices.forEach((i, j) => (results[i] = reply[j]))
      }),
    )
    return results
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
    const ops: Operation[] = []
    const add = <T>(key: string, args: (string | number)[], parse: Parser = (r) => r, keep = true): Pending<T> => {
      const slot = keep ? new PendingSlot<unknown>() : undefined
      ops.push({ key, args, slot, parse })
      return slot as unknown as Pending<T>
    }
    const ttl = (ms: number) => (ms > 0 ? Math.ceil(ms) : 0)
    const self = this
    return {
      get: (key) => add(key, ['get'], asNullableString),
      set: (key, value, ttlMs) => {
        add(key, ['set', value, ttl(ttlMs)], undefined, false)
      },
      setIfAbsent: (key, value, ttlMs) => add(key, ['setnx', value, ttl(ttlMs)], (r) => Number(r) === 1),
      getSet: (key, value, ttlMs) => add(key, ['getset', value, ttl(ttlMs)], asNullableString),
      del: (key) => add(key, ['del'], asNumber),
      incrBy: (key, by, ttlMs) => add(key, [Number.isInteger(by) ? 'incrby' : 'incrbyfloat', by, ttl(ttlMs)], asNumber),
      hGetAll: (key) => add(key, ['hgetall'], asRecord),
      hSet: (key, fields, ttlMs) => {
        const args: (string | number)[] = ['hset', 0]
        for (const field in fields) args.push(field, fields[field]!)
        if (args.length === 2) return
        args[1] = (args.length - 2) / 2
        args.push(ttl(ttlMs))
        add(key, args, undefined, false)
      },
      hDel: (key, field) => add(key, ['hdel', field], asNumber),
      hIncrBy: (key, field, by, ttlMs) => add(key, [Number.isInteger(by) ? 'hincrby' : 'hincrbyfloat', field, by, ttl(ttlMs)], asNumber),
      hIncrClamped: (key, field, by, initial, min, max, ttlMs) => add(key, ['hincrclamped', field, by, initial, min, max, ttl(ttlMs)], asNumber),
      sAdd: (key, member, ttlMs) => add(key, ['sadd', member, ttl(ttlMs)], (r) => Number(r) === 1),
      sRem: (key, member) => add(key, ['srem', member], asNumber),
      sMembers: (key) => add(key, ['smembers'], asStrings),
      sCard: (key) => add(key, ['scard'], asNumber),
      zAdd: (key, score, member, ttlMs) => {
        add(key, ['zadd', score, member, ttl(ttlMs)], undefined, false)
      },
      zRemRangeByScore: (key, min, max) => add(key, ['zremrangebyscore', min, max], asNumber),
      zCount: (key, min, max) => add(key, ['zcount', min, max], asNumber),
      zRangeByScore: (key, min, max) => add(key, ['zrangebyscore', min, max], asStrings),
      pTtl: (key) => add(key, ['pttl'], asNumber),
      async exec() {
        if (ops.length === 0) return
        let results: unknown[]
        try {
          const prefix = self.clusterPrefix
          results = await self.bounded(prefix === undefined ? self.script(ops) : self.scriptsBySlot(ops, prefix), 'a batch')
        } catch (err) {
          if (err instanceof StoreUnavailableError) throw err
          // A script error (a key of the wrong type, say) is the caller's problem, not an outage.
          if (err instanceof ReplyError && !UNAVAILABLE_REPLY.test((err as Error).message)) throw new Error(`Redis batch failed: ${(err as Error).message}`)
          throw new StoreUnavailableError(`Redis batch failed: ${(err as Error).message}`, { cause: err })
        }
        ops.forEach(({ slot, parse }, i) => slot?.resolve(parse(results[i])))
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
