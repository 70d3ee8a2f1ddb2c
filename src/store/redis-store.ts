import calculateSlot from 'cluster-key-slot'
import { Cluster, Command, Redis, ReplyError, type ClusterOptions, type RedisOptions } from 'ioredis'
import { createHash } from 'node:crypto'
import { NO_FIELDS, PendingSlot, StoreUnavailableError } from './state-store.js'
import { type BatchOptions, type Pending, type StateStore, type StoreBatch } from '../engine/ports.js'

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

/** BATCH's digest: EVALSHA sends it instead of the script; the script itself goes only when Redis does not have it yet. */
const BATCH_SHA = createHash('sha1').update(BATCH).digest('hex')

/** Replies to the script come back as UTF-8 strings, as they would through ioredis' own commands. */
const COMMAND_OPTIONS = { replyEncoding: 'utf8' } as const

/**
 * Fails the script calls Redis has not answered by their deadline. Every call has the same time-out, so deadlines
 * arrive in order: one queue and one timer serve them all, instead of a timer, a race and a finally per batch.
 * A call leaves the queue's hold when it is answered (so its arguments and reply are not kept alive until the
 * deadline, which would move them out of the young generation); an answered call is passed over when its deadline comes.
 */
class Deadlines {
  private readonly commands: (Command | undefined)[] = []
  private readonly at: number[] = []
  private head = 0
  /** How many entries the queue has dropped from its front: entry n is at n - dropped. */
  private dropped = 0
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly timeoutMs: number) {}

  watch(command: Command, deadline: number): void {
    const entry = this.dropped + this.commands.length
    this.commands.push(command)
    this.at.push(deadline)
    const resolve = command.resolve
    command.resolve = (value) => {
      const i = entry - this.dropped
      if (i >= 0) this.commands[i] = undefined
      resolve(value)
    }
    if (this.timer === undefined) this.arm(deadline - performance.now())
  }

  private arm(ms: number): void {
    // Unreferenced: a call still waiting has an open socket under it, which keeps the process alive on its own.
    this.timer = setTimeout(this.sweep, Math.max(1, Math.ceil(ms))).unref()
  }

  private readonly sweep = (): void => {
    this.timer = undefined
    const now = performance.now()
    const { commands, at } = this
    let i = this.head
    for (; i < commands.length && at[i]! <= now; i++) {
      const command = commands[i]
      if (command === undefined) continue
      commands[i] = undefined
      // One unanswered call fails its batch, as a lost connection would; rejecting one that failed already changes nothing.
      command.reject(new StoreUnavailableError(`Redis did not answer a batch within ${this.timeoutMs} ms`))
    }
    if (i === commands.length) {
      this.dropped += i
      commands.length = 0
      at.length = 0
      this.head = 0
      return
    }
    if (i > 1024 && i * 2 > commands.length) {
      commands.splice(0, i)
      at.splice(0, i)
      this.dropped += i
      i = 0
    }
    this.head = i
    this.arm(at[i]! - now)
  }
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
const asFlag: Parser = (raw) => Number(raw) === 1
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

/** Hands a batch's results, from `offset` in a script's reply, to the operations that asked for them. */
type Deliver = (results: readonly unknown[], offset: number) => void

/** Background batches waiting to go out: their operations in order, as one batch, and who gets which results. */
interface HeldBatches {
  keys: string[]
  argv: (string | number)[]
  starts: number[]
  parts: { count: number; deliver: Deliver; resolve: () => void; reject: (err: unknown) => void }[]
}

/** Past this many held operations, background batches go out at once instead of waiting for the next call. */
const HOLD_MAX_OPERATIONS = 1024

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
  /** What the client puts before every key: the store prefixes the keys of its script calls itself. */
  private readonly prefix: string
  private readonly cluster: boolean
  private readonly deadlines: Deadlines
  /** Background batches not sent yet, and the end-of-turn flush that sends them if no call comes first. */
  private held: HeldBatches | undefined
  private heldFlush: NodeJS.Immediate | undefined

  private constructor(
    readonly client: Redis | Cluster,
    timeoutMs: number,
    private readonly ownsClient: boolean,
    prefix: string,
  ) {
    this.timeoutMs = timeoutMs
    this.prefix = prefix
    this.cluster = client instanceof Cluster
    this.deadlines = new Deadlines(timeoutMs)
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

  /** Sends one script call, failed by the deadline sweep if Redis has not answered by `deadline`. */
  private send(name: 'evalsha' | 'eval', args: (string | number)[], deadline: number): Promise<unknown[]> {
    const command = new Command(name, args, COMMAND_OPTIONS)
    this.deadlines.watch(command, deadline)
    void this.client.sendCommand(command)
    return command.promise as Promise<unknown[]>
  }

  /**
   * One script call for these keys (already prefixed) and arguments, which must all be in one slot on a cluster;
   * results in their order. Redis keeps the script once it has seen it, so the call names its digest, and sends the
   * script itself only when Redis answers that it does not know it (a new server, a flushed script cache).
   */
  private script(keys: readonly string[], argv: readonly (string | number)[], deadline: number): Promise<unknown[]> {
    const args: (string | number)[] = [BATCH_SHA, keys.length]
    for (let i = 0; i < keys.length; i++) args.push(keys[i]!)
    for (let i = 0; i < argv.length; i++) args.push(argv[i]!)
    return this.send('evalsha', args, deadline).catch((err: unknown) => {
      if (!(err instanceof ReplyError) || !(err as Error).message.startsWith('NOSCRIPT')) throw err
      args[0] = BATCH
      return this.send('eval', args, deadline)
    })
  }

  /**
   * A cluster runs a script only on keys of one slot, so the batch runs as one script per slot, all sent at once:
   * one round trip per slot the batch touches. The keys' hash tags put one subject's (one address's, one token's)
   * keys in one slot, so what must be atomic together is; operations keep their order within a slot.
   * `starts[i]` is where operation i's arguments begin in `argv`.
   */
  private async scriptsBySlot(keys: readonly string[], argv: readonly (string | number)[], starts: readonly number[], deadline: number): Promise<unknown[]> {
    const groups = new Map<number, number[]>()
    keys.forEach((key, i) => {
      const slot = calculateSlot(key)
      const group = groups.get(slot)
      if (group) group.push(i)
      else groups.set(slot, [i])
    })
    if (groups.size === 1) return this.script(keys, argv, deadline)
    const results = new Array<unknown>(keys.length)
    await Promise.all(
      [...groups.values()].map(async (indices) => {
        const groupArgs: (string | number)[] = []
        for (const i of indices) for (let a = starts[i]!; a < (starts[i + 1] ?? argv.length); a++) groupArgs.push(argv[a]!)
        const reply = await this.script(
          indices.map((i) => keys[i]!),
          groupArgs,
          deadline,
        )
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

  batch(options?: BatchOptions): StoreBatch {
    // The batch as BATCH reads it: one key per operation (prefixed here, as the client would), and each operation's
    // name and arguments in order; with each operation, where its result goes and how it is read.
    const prefix = this.prefix
    const keys: string[] = []
    const argv: (string | number)[] = []
    const starts: number[] = []
    const slots: (PendingSlot<unknown> | undefined)[] = []
    const parsers: (Parser | undefined)[] = []
    const op = (key: string, name: string): void => {
      keys.push(prefix + key)
      starts.push(argv.length)
      argv.push(name)
    }
    const keep = <T>(parse: Parser): Pending<T> => {
      const slot = new PendingSlot<unknown>()
      slots.push(slot)
      parsers.push(parse)
      return slot as unknown as Pending<T>
    }
    const drop = (): void => {
      slots.push(undefined)
      parsers.push(undefined)
    }
    const ttl = (ms: number) => (ms > 0 ? Math.ceil(ms) : 0)
    const deliver: Deliver = (results, offset) => {
      for (let i = 0; i < slots.length; i++) slots[i]?.resolve(parsers[i]!(results[offset + i]))
    }
    const self = this
    return {
      get: (key) => (op(key, 'get'), keep(asNullableString)),
      set: (key, value, ttlMs) => {
        op(key, 'set')
        argv.push(value, ttl(ttlMs))
        drop()
      },
      setIfAbsent: (key, value, ttlMs) => (op(key, 'setnx'), argv.push(value, ttl(ttlMs)), keep(asFlag)),
      getSet: (key, value, ttlMs) => (op(key, 'getset'), argv.push(value, ttl(ttlMs)), keep(asNullableString)),
      del: (key) => (op(key, 'del'), keep(asNumber)),
      incrBy: (key, by, ttlMs) => (op(key, Number.isInteger(by) ? 'incrby' : 'incrbyfloat'), argv.push(by, ttl(ttlMs)), keep(asNumber)),
      hGetAll: (key) => (op(key, 'hgetall'), keep(asRecord)),
      hSet: (key, fields, ttlMs) => {
        let n = 0
        for (const _ in fields) n++
        if (n === 0) return
        op(key, 'hset')
        argv.push(n)
        for (const field in fields) argv.push(field, fields[field]!)
        argv.push(ttl(ttlMs))
        drop()
      },
      hDel: (key, field) => (op(key, 'hdel'), argv.push(field), keep(asNumber)),
      hIncrBy: (key, field, by, ttlMs) => (op(key, Number.isInteger(by) ? 'hincrby' : 'hincrbyfloat'), argv.push(field, by, ttl(ttlMs)), keep(asNumber)),
      hIncrClamped: (key, field, by, initial, min, max, ttlMs) => (op(key, 'hincrclamped'), argv.push(field, by, initial, min, max, ttl(ttlMs)), keep(asNumber)),
      sAdd: (key, member, ttlMs) => (op(key, 'sadd'), argv.push(member, ttl(ttlMs)), keep(asFlag)),
      sRem: (key, member) => (op(key, 'srem'), argv.push(member), keep(asNumber)),
      sMembers: (key) => (op(key, 'smembers'), keep(asStrings)),
      sCard: (key) => (op(key, 'scard'), keep(asNumber)),
      zAdd: (key, score, member, ttlMs) => {
        op(key, 'zadd')
        argv.push(score, member, ttl(ttlMs))
        drop()
      },
      zRemRangeByScore: (key, min, max) => (op(key, 'zremrangebyscore'), argv.push(min, max), keep(asNumber)),
      zCount: (key, min, max) => (op(key, 'zcount'), argv.push(min, max), keep(asNumber)),
      zRangeByScore: (key, min, max) => (op(key, 'zrangebyscore'), argv.push(min, max), keep(asStrings)),
      pTtl: (key) => (op(key, 'pttl'), keep(asNumber)),
      async exec() {
        if (keys.length === 0) return
        if (options?.background) return self.hold(keys, argv, starts, deliver)
        deliver(await self.runAfterHeld(keys, argv, starts), 0)
      },
    }
  }

  /**
   * Holds a background batch until the store's next call or the end of this turn of the event loop, whichever comes
   * first: the activity and learning writes of every decision in a turn then go out as one script call, in the same
   * socket write as the next decision's reads, instead of costing a round trip each.
   */
  private hold(keys: readonly string[], argv: readonly (string | number)[], starts: readonly number[], deliver: Deliver): Promise<void> {
    let held = this.held
    if (held === undefined) {
      held = this.held = { keys: [], argv: [], starts: [], parts: [] }
      this.heldFlush = setImmediate(this.flushHeld)
    }
    const base = held.argv.length
    for (let i = 0; i < keys.length; i++) {
      held.keys.push(keys[i]!)
      held.starts.push(base + starts[i]!)
    }
    for (let i = 0; i < argv.length; i++) held.argv.push(argv[i]!)
    const parts = held.parts
    const done = new Promise<void>((resolve, reject) => parts.push({ count: keys.length, deliver, resolve, reject }))
    if (held.keys.length >= HOLD_MAX_OPERATIONS) this.flushHeld()
    return done
  }

  /** Sends the held background batches as one batch; each settles with it. */
  private readonly flushHeld = (): void => {
    const held = this.held
    if (held === undefined) return
    this.held = undefined
    clearImmediate(this.heldFlush)
    this.heldFlush = undefined
    this.run(held.keys, held.argv, held.starts).then(
      (results) => {
        let offset = 0
        for (const part of held.parts) {
          try {
            part.deliver(results, offset)
            part.resolve()
          } catch (err) {
            part.reject(err)
          }
          offset += part.count
        }
      },
      (err: unknown) => {
        for (const part of held.parts) part.reject(err)
      },
    )
  }

  /**
   * A batch somebody waits for. Held background batches go first, so that it reads what they wrote; on one connection
   * the socket is corked around both calls, so they leave in one write and Redis answers them in one.
   */
  private runAfterHeld(keys: readonly string[], argv: readonly (string | number)[], starts: readonly number[]): Promise<unknown[]> {
    if (this.held === undefined) return this.run(keys, argv, starts)
    const stream = !this.cluster && this.client.status === 'ready' ? (this.client as Redis).stream : undefined
    stream?.cork()
    try {
      this.flushHeld()
      return this.run(keys, argv, starts)
    } finally {
      stream?.uncork()
    }
  }

  /**
   * One batch as script calls (one per slot on a cluster), with failures as the port names them. The calls are sent
   * before this returns (nothing is awaited before them), which runAfterHeld's corking relies on.
   */
  private async run(keys: readonly string[], argv: readonly (string | number)[], starts: readonly number[]): Promise<unknown[]> {
    const deadline = performance.now() + this.timeoutMs
    try {
      return await (this.cluster ? this.scriptsBySlot(keys, argv, starts, deadline) : this.script(keys, argv, deadline))
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err
      // A script error (a key of the wrong type, say) is the caller's problem, not an outage.
      if (err instanceof ReplyError && !UNAVAILABLE_REPLY.test((err as Error).message)) throw new Error(`Redis batch failed: ${(err as Error).message}`)
      throw new StoreUnavailableError(`Redis batch failed: ${(err as Error).message}`, { cause: err })
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
    // Held writes go out before the connection is closed (or handed back), not after.
    this.flushHeld()
    if (!this.ownsClient) return
    try {
      await this.bounded(this.client.quit(), 'QUIT')
    } catch {
      this.client.disconnect()
    }
  }
}
