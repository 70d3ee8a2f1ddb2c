import { NO_FIELDS, PendingSlot } from './state-store.js'
import { type Pending, type StateStore, type StoreBatch } from '../engine/ports.js'

/*
 * Layout. A key's owner is its hash tag, `{alice}` with its braces (keyTag puts one in every key the PDP writes), or
 * the whole key when it has none. All of one owner's keys live in one flat array, its record:
 *
 *   [owner, used,  prefix, suffix, meta, expiry, ...payload,  prefix, suffix, meta, expiry, ...payload, ...]
 *
 * A key is found by the owner (one Map look-up, or none when it is the owner looked up last) and then by a linear
 * search over the record's few keys, comparing the key's text before and after its tag (`risk:dev:`, `:laptop-1`)
 * in place: no key string is built or hashed per operation. Prefixes and suffixes are interned, so that the
 * `risk:bh:` of every subject is one string. `meta` packs the key's kind, whether its payload is large, the
 * milliseconds of its expiry and the payload's length; `expiry` holds the expiry's whole seconds, so that both stay
 * small integers rather than one boxed double. The payload is the value itself for a string, [field, value, ...] for
 * a hash, [member, ...] for a set and [member, score, ...] for a sorted set, in insertion order; past SMALL_MEMBERS
 * members it becomes one Map or Set. Strings that are canonical numbers ("1700000000000", "3") are kept as numbers
 * and read back as the same text. A record is rebuilt at its exact new length when it gains or loses elements
 * (arrays grown in place keep up to half again as much room), and evicted whole: a subject's state goes at once.
 */
type Large = Map<string, string | number> | Set<string>
type Slot = string | number | boolean | Large
type Rec = Slot[]

const OWNER = 0
const USED = 1
const FIRST_KEY = 2
const PREFIX = 0
const SUFFIX = 1
const META = 2
const EXPIRY = 3
const HEADER = 4

const STRING = 0
const HASH = 1
const SET = 2
const ZSET = 3
const KIND = 3
const LARGE = 4
/** meta = kind | LARGE | expiry's milliseconds << MS_SHIFT | payload length << LENGTH_SHIFT */
const MS_SHIFT = 3
const MS_MASK = 1023 << MS_SHIFT
/** Milliseconds values meaning: no expiry; `expiry` holds the epoch ms itself (a clock with fractions of a ms). */
const NO_EXPIRY = 1023
const EXACT = 1022
const LENGTH_SHIFT = 13
const KIND_NAMES = ['string', 'hash', 'set', 'zset'] as const
type KindName = (typeof KIND_NAMES)[number]

/**
 * Keys one owner's record holds at most. Past it (a subject with hundreds of live sessions) a new key gets a record
 * of its own, named SPILL + key, so that no look-up scans and no write copies an ever longer record.
 */
const RECORD_KEYS = 64
/** Starts no owner: a tag ends at its first "}", and a key without a tag holds no "{" followed by a "}". */
const SPILL = '{}'
/** Members a hash, set or sorted set keeps in the record's array before it becomes a Map or Set. */
const SMALL_MEMBERS = 16
/** Distinct prefixes and suffixes interned before the table starts over (ids in suffixes would grow it without end). */
const INTERNED_MAX = 1024

/**
 * Approximate heap cost, in bytes, of what the store keeps, on 64-bit Node (no pointer compression): one element
 * of a record, of a Map or of a Set; a string beyond its characters (counted one byte each, as V8 stores Latin-1 text);
 * a number that is not a small integer; a key's header beyond its suffix; a record (its Map entry, array, owner
 * string) beyond the owner's characters; a Map or Set beyond its entries, and one entry beyond its elements.
 * An estimate that stays cheap on every write, calibrated with `scripts/bench/store-bytes.ts` so that the heap grows
 * about as much as the account.
 */
const ELEMENT_BYTES = 8
const STRING_BYTES = 20
const NUMBER_BYTES = 16
const KEY_BYTES = HEADER * ELEMENT_BYTES
const RECORD_BYTES = 136
const LARGE_BYTES = 160
const LARGE_ENTRY_BYTES = 16

/** The accounted size of one element of a record, Map or Set holding a string or number. */
function slotBytes(value: Slot): number {
  if (typeof value === 'string') return ELEMENT_BYTES + STRING_BYTES + value.length
  return typeof value === 'number' && (value | 0) !== value ? ELEMENT_BYTES + NUMBER_BYTES : ELEMENT_BYTES
}

/**
 * A member of a hash, set or sorted set, with its value. A hash's field names are counted without a string's
 * overhead: they are mostly the code's own literals (`lastSeen`), one string shared by every record.
 */
function memberBytes(kind: number, member: string, value?: Slot): number {
  return (kind === HASH ? ELEMENT_BYTES + member.length : slotBytes(member)) + (value === undefined ? 0 : slotBytes(value))
}

/** The accounted size of payload element `index` of a key whose meta is `meta`. */
function elementBytes(meta: number, index: number, item: Slot): number {
  const kind = meta & KIND
  if (!(meta & LARGE)) return kind === HASH && index % 2 === 0 ? memberBytes(HASH, item as string) : slotBytes(item)
  let bytes = ELEMENT_BYTES + LARGE_BYTES
  if (item instanceof Set) for (const member of item) bytes += LARGE_ENTRY_BYTES + memberBytes(kind, member)
  else for (const [member, value] of item as Map<string, Slot>) bytes += LARGE_ENTRY_BYTES + memberBytes(kind, member, value)
  return bytes
}

/** A string kept as a number when that number reads back as the very same text. */
function compact(value: string): string | number {
  const c = value.charCodeAt(0)
  if (value.length > 16 || !((c >= 48 && c <= 57) || c === 45)) return value
  // Most are times and counters: digits without a leading zero, at most 15 (exact in a double), read back as themselves
  // without String(n), which would build a string per write only to compare it.
  if (c !== 48 && value.length <= 15 && digitsFrom(value, c === 45 ? 1 : 0)) return Number(value)
  const n = Number(value)
  return String(n) === value ? n : value
}

/** Whether `value` is one or more decimal digits from `at` on, the first not a zero. */
function digitsFrom(value: string, at: number): boolean {
  const first = value.charCodeAt(at)
  if (!(first >= 49 && first <= 57)) return false
  for (let i = at + 1; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

const text = (value: Slot): string => (typeof value === 'string' ? value : String(value))

/** A flat copy: a slice of a key would keep the caller's whole key string alive for as long as the store holds it. */
const copy = (value: string): string => JSON.parse(JSON.stringify(value)) as string

const EMPTY: Slot[] = []

export interface MemoryStateStoreOptions {
  now?: () => number
  /** Keys kept at most; past it the least recently used owners' keys go, all of one owner's at once. Default 1,000,000. */
  maxKeys?: number
  /** Accounted bytes kept at most (see ELEMENT_BYTES); past it the least recently used owners' keys go. Default 96 MiB. */
  maxBytes?: number
  /** Members kept at most per set, hash or sorted set. Default 10,000. */
  maxMembersPerKey?: number
}

/** Queued operations, OP_STRIDE elements each: code, key, up to four arguments, the Pending to fill (if any). */
type Queued = unknown[]
const OP_STRIDE = 7
/** Operations a kept array may hold: more than a decision queues, less than a control-plane listing may. */
const SPARE_OPS = 64
const GET = 0
const SET_OP = 1
const SET_IF_ABSENT = 2
const GET_SET = 3
const DEL = 4
const INCR_BY = 5
const H_GET_ALL = 6
const H_SET = 7
const H_DEL = 8
const H_INCR_BY = 9
const H_INCR_CLAMPED = 10
const S_ADD = 11
const S_REM = 12
const S_MEMBERS = 13
const S_CARD = 14
const Z_ADD = 15
const Z_REM_RANGE = 16
const Z_COUNT = 17
const Z_RANGE = 18
const P_TTL = 19

/**
 * A batch of the embedded store: its operations queued as codes and arguments in one flat array (no closure per
 * operation, no object of closures per batch), run in order by the store in exec().
 */
class MemoryBatch implements StoreBatch {
  private ops: Queued
  /** Elements of `ops` in use: a reused array is written over from the start. */
  private length = 0
  private readonly run: (ops: Queued, length: number) => Promise<void>

  constructor(run: (ops: Queued, length: number) => Promise<void>, ops: Queued) {
    this.run = run
    this.ops = ops
  }

  private queue<T>(code: number, key: string, a?: unknown, b?: unknown, c?: unknown, d?: unknown): Pending<T> {
    const slot = new PendingSlot<T>()
    this.put(code, key, a, b, c, d, slot)
    return slot
  }

  private write(code: number, key: string, a: unknown, b: unknown, c?: unknown): void {
    this.put(code, key, a, b, c, undefined, undefined)
  }

  private put(code: number, key: string, a: unknown, b: unknown, c: unknown, d: unknown, slot: PendingSlot<unknown> | undefined): void {
    const ops = this.ops
    let n = this.length
    ops[n++] = code
    ops[n++] = key
    ops[n++] = a
    ops[n++] = b
    ops[n++] = c
    ops[n++] = d
    ops[n++] = slot
    this.length = n
  }

  get(key: string) {
    return this.queue<string | null>(GET, key)
  }
  set(key: string, value: string, ttlMs: number) {
    this.write(SET_OP, key, value, ttlMs)
  }
  setIfAbsent(key: string, value: string, ttlMs: number) {
    return this.queue<boolean>(SET_IF_ABSENT, key, value, ttlMs)
  }
  getSet(key: string, value: string, ttlMs: number) {
    return this.queue<string | null>(GET_SET, key, value, ttlMs)
  }
  del(key: string) {
    return this.queue<number>(DEL, key)
  }
  incrBy(key: string, by: number, ttlMs: number) {
    return this.queue<number>(INCR_BY, key, by, ttlMs)
  }
  hGetAll(key: string) {
    return this.queue<Record<string, string>>(H_GET_ALL, key)
  }
  hSet(key: string, fields: Record<string, string>, ttlMs: number) {
    this.write(H_SET, key, fields, ttlMs)
  }
  hDel(key: string, field: string) {
    return this.queue<number>(H_DEL, key, field)
  }
  hIncrBy(key: string, field: string, by: number, ttlMs: number) {
    return this.queue<number>(H_INCR_BY, key, field, by, ttlMs)
  }
  hIncrClamped(key: string, field: string, by: number, initial: number, min: number, max: number, ttlMs: number) {
    return this.queue<number>(H_INCR_CLAMPED, key, field, by, [initial, min, max], ttlMs)
  }
  sAdd(key: string, member: string, ttlMs: number) {
    return this.queue<boolean>(S_ADD, key, member, ttlMs)
  }
  sRem(key: string, member: string) {
    return this.queue<number>(S_REM, key, member)
  }
  sMembers(key: string) {
    return this.queue<string[]>(S_MEMBERS, key)
  }
  sCard(key: string) {
    return this.queue<number>(S_CARD, key)
  }
  zAdd(key: string, score: number, member: string, ttlMs: number) {
    this.write(Z_ADD, key, score, member, ttlMs)
  }
  zRemRangeByScore(key: string, min: number, max: number) {
    return this.queue<number>(Z_REM_RANGE, key, min, max)
  }
  zCount(key: string, min: number, max: number) {
    return this.queue<number>(Z_COUNT, key, min, max)
  }
  zRangeByScore(key: string, min: number, max: number) {
    return this.queue<string[]>(Z_RANGE, key, min, max)
  }
  pTtl(key: string) {
    return this.queue<number>(P_TTL, key)
  }
  exec(): Promise<void> {
    // The array goes back to the store once run: operations queued after exec() start a batch of their own.
    const ops = this.ops
    const length = this.length
    this.ops = []
    this.length = 0
    return this.run(ops, length)
  }
}

class WrongTypeError extends Error {
  constructor(key: string, expected: KindName) {
    super(`WRONGTYPE: key "${key}" does not hold a ${expected}`)
    this.name = 'WrongTypeError'
  }
}

/**
 * The embedded store: everything in this process, bounded so that it can run for weeks.
 * Expiry follows the injected clock, read once per batch, so tests move time instead of waiting. A batch runs all
 * of its operations synchronously inside exec(), so it is atomic with respect to other batches.
 */
export class MemoryStateStore implements StateStore {
  readonly kind = 'memory' as const
  private readonly now: () => number
  private readonly maxMembers: number
  private readonly maxKeys: number
  private readonly maxBytes: number
  private accounted = 0
  private keyCount = 0
  /** Records of keys spilled out of their owner's full record: while there are any, a key missing from its owner's record is looked for there too. */
  private spilled = 0
  /**
   * Records by owner. Evicted by the clock (second-chance) approximation of least-recently-used: a use only sets
   * the record's `used` element to true, and the hand (an iterator kept across evictions) clears it and passes on,
   * or evicts a record found unused. Reordering the map on every use would rehash it constantly.
   */
  private readonly records = new Map<string, Rec>()
  private hand: Iterator<Rec> | undefined
  private readonly interned = new Map<string, string>()
  private closed = false
  /** The clock's reading for the batch being run: one batch happens at one instant, as a Redis script does. */
  private time = 0
  /** Batches run so far: a record's `used` element holds the batch that created it until a later batch uses it. */
  private batches = 0
  /** What seek() found: the key's record (if its owner has one) and where its owner lies in the key. */
  private rec: Rec | undefined
  private ownerStart = 0
  private ownerEnd = 0
  /** The record looked up last: a decision's keys share one owner, so most look-ups compare one short string. */
  private recent: Rec | undefined
  /** The operations array of a batch that has run, for the next batch: a decision's batch would otherwise grow a new one op by op. */
  private spare: Queued | undefined

  constructor(options: MemoryStateStoreOptions = {}) {
    this.now = options.now ?? Date.now
    this.maxMembers = options.maxMembersPerKey ?? 10_000
    this.maxKeys = options.maxKeys ?? 1_000_000
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
    for (const rec of this.records.values()) {
      for (let p = FIRST_KEY; p < rec.length; p = next(rec, p)) if (!expired(rec, p, now)) n++
    }
    return n
  }

  /**
   * Number of owners (subjects, addresses, token ids) whose keys the store holds, expired ones included until they
   * go; a key spilled out of a full owner record counts as one more.
   */
  get owners(): number {
    return this.records.size
  }

  // ---- Finding keys

  /**
   * The position of a live key in its record (this.rec afterwards), or -1. An expired key found on the way is
   * removed; a live one marks its record used.
   */
  private seek(key: string): number {
    const open = key.indexOf('{')
    const close = open < 0 ? -1 : key.indexOf('}', open + 1)
    const start = close < 0 ? 0 : open
    const end = close < 0 ? key.length : close + 1
    this.ownerStart = start
    this.ownerEnd = end
    let rec = this.recent
    if (rec === undefined || (rec[OWNER] as string).length !== end - start || !key.startsWith(rec[OWNER] as string, start)) {
      rec = this.records.get(close < 0 ? key : key.slice(start, end))
      // An owner without a record (a session's revocation marker, an address without a restriction) is asked about
      // between the subject's keys: the subject's record stays the one compared first.
      if (rec !== undefined) this.recent = rec
    }
    this.rec = rec
    if (rec !== undefined) {
      const suffixLength = key.length - end
      for (let p = FIRST_KEY; p < rec.length; p = next(rec, p)) {
        const prefix = rec[p + PREFIX] as string
        const suffix = rec[p + SUFFIX] as string
        if (prefix.length !== start || suffix.length !== suffixLength || !key.startsWith(prefix) || !key.endsWith(suffix)) continue
        if (expired(rec, p, this.time)) {
          this.removeKey(p)
          return -1
        }
        this.use(rec)
        return p
      }
    }
    if (this.spilled > 0) {
      const spill = this.records.get(SPILL + key)
      if (spill !== undefined) {
        this.rec = spill
        if (!expired(spill, FIRST_KEY, this.time)) {
          this.use(spill)
          return FIRST_KEY
        }
        this.removeKey(FIRST_KEY)
        // insert() continues from the owner's record.
        this.rec = rec
      }
    }
    return -1
  }

  /** Marks a record used, unless the batch running created it: a subject seen once is the first to go. */
  private use(rec: Rec): void {
    if (rec[USED] !== this.batches) rec[USED] = true
  }

  /** The live key's position after checking its kind, or -1. */
  private typed(key: string, kind: number): number {
    const p = this.seek(key)
    if (p >= 0 && ((this.rec![p + META] as number) & KIND) !== kind) throw new WrongTypeError(key, KIND_NAMES[kind]!)
    return p
  }

  /** The key's position, created empty when absent. Like PEXPIRE after HSET/SADD/ZADD: a positive TTL restarts the clock, none keeps the key's expiry. */
  private open(key: string, kind: number, ttlMs: number): number {
    const p = this.typed(key, kind)
    if (p < 0) return this.insert(key, kind, EMPTY, ttlMs > 0 ? this.time + ttlMs : undefined)
    if (ttlMs > 0) setExpiry(this.rec!, p, this.time + ttlMs)
    return p
  }

  private intern(value: string): string {
    if (value.length === 0) return ''
    let canonical = this.interned.get(value)
    if (canonical === undefined) {
      if (this.interned.size >= INTERNED_MAX) this.interned.clear()
      canonical = copy(value)
      this.interned.set(canonical, canonical)
    }
    return canonical
  }

  // ---- Changing records: every change of size or content goes through these, which keep the byte account

  /** Adds the key seek() just failed to find, dropping its owner's expired keys on the way; returns its position. */
  private insert(key: string, kind: number, payload: Slot[], expiresAt: number | undefined): number {
    const start = this.ownerStart
    const end = this.ownerEnd
    const suffix = this.intern(key.slice(end))
    const header: Slot[] = [this.intern(key.slice(0, start)), suffix, kind | (payload.length << LENGTH_SHIFT), 0]
    let bytes = KEY_BYTES + suffix.length
    for (const item of payload) bytes += slotBytes(item)
    const old = this.rec
    this.keyCount++
    if (old === undefined) {
      const owner = copy(end - start === key.length ? key : key.slice(start, end))
      const rec = build(FIRST_KEY + HEADER + payload.length, [owner, this.batches], header, payload)
      setExpiry(rec, FIRST_KEY, expiresAt)
      this.records.set(owner, rec)
      this.rec = this.recent = rec
      this.grow(RECORD_BYTES + owner.length + bytes)
      return FIRST_KEY
    }
    // Keep the live keys; an owner's expired keys (last minute's counter ...) would otherwise pile up in its record.
    let length = FIRST_KEY
    let live = 0
    let gone = 0
    let fits = -1
    for (let p = FIRST_KEY; p < old.length; p = next(old, p)) {
      if (expired(old, p, this.time)) {
        gone++
        if (next(old, p) - p === HEADER + payload.length) fits = p
        continue
      }
      length += next(old, p) - p
      live++
    }
    if (live >= RECORD_KEYS) return this.spill(key, header, payload, expiresAt, bytes)
    if (gone === 1 && fits >= 0) {
      // The one expired key takes exactly the new key's room (this minute's counter replacing the last one's): the
      // record is written in place, not copied, so that the common insert leaves no record behind for the collector.
      bytes -= keyBytes(old, fits)
      this.keyCount--
      for (let i = 0; i < HEADER; i++) old[fits + i] = header[i]!
      for (let i = 0; i < payload.length; i++) old[fits + HEADER + i] = payload[i]!
      this.use(old)
      setExpiry(old, fits, expiresAt)
      this.grow(bytes)
      return fits
    }
    const rec: Rec = new Array(length + HEADER + payload.length)
    for (let i = 0; i < FIRST_KEY; i++) rec[i] = old[i]!
    let j = FIRST_KEY
    for (let p = FIRST_KEY; p < old.length; p = next(old, p)) {
      if (expired(old, p, this.time)) {
        bytes -= keyBytes(old, p)
        this.keyCount--
        continue
      }
      for (let i = p; i < next(old, p); i++) rec[j++] = old[i]!
    }
    for (const item of header) rec[j++] = item
    for (const item of payload) rec[j++] = item
    this.use(rec)
    setExpiry(rec, j - HEADER - payload.length, expiresAt)
    this.replace(old, rec)
    this.grow(bytes)
    return j - HEADER - payload.length
  }

  /** Gives a key of a full owner record a record of its own (this.rec afterwards); returns its position. */
  private spill(key: string, header: Slot[], payload: Slot[], expiresAt: number | undefined, bytes: number): number {
    const name = copy(SPILL + key)
    header[PREFIX] = header[SUFFIX] = ''
    const rec = build(FIRST_KEY + HEADER + payload.length, [name, this.batches], header, payload)
    setExpiry(rec, FIRST_KEY, expiresAt)
    this.records.set(name, rec)
    this.spilled++
    this.rec = rec
    // The key's suffix is not kept apart: the record's name holds the whole key.
    this.grow(RECORD_BYTES + name.length + bytes - (key.length - this.ownerEnd))
    return FIRST_KEY
  }

  /** Removes the key at p from this.rec, and the record with its last key. */
  private removeKey(p: number): void {
    const old = this.rec!
    this.keyCount--
    if (p === FIRST_KEY && next(old, p) === old.length) {
      this.dropRecord(old)
      this.rec = undefined
      return
    }
    const bytes = keyBytes(old, p)
    const rec = build(old.length - (next(old, p) - p), old.slice(0, p), old.slice(next(old, p)))
    this.replace(old, rec)
    this.grow(-bytes)
  }

  /** Replaces `remove` payload elements of the key at p, from payload index `at`, with `items`; `meta` if it changes otherwise. */
  private splice(p: number, at: number, remove: number, items: Slot[], meta?: number): void {
    const old = this.rec!
    const from = p + HEADER + at
    const oldMeta = old[p + META] as number
    const newMeta = meta ?? oldMeta + ((items.length - remove) << LENGTH_SHIFT)
    let delta = 0
    for (let i = 0; i < remove; i++) delta -= elementBytes(oldMeta, at + i, old[from + i]!)
    for (let i = 0; i < items.length; i++) delta += elementBytes(newMeta, at + i, items[i]!)
    const rec = build(old.length - remove + items.length, old.slice(0, from), items, old.slice(from + remove))
    rec[p + META] = newMeta
    this.replace(old, rec)
    this.grow(delta)
  }

  /** Sets one element of this.rec in place. */
  private put(i: number, value: Slot): void {
    const rec = this.rec!
    this.grow(slotBytes(value) - slotBytes(rec[i]!))
    rec[i] = value
  }

  private grow(delta: number): void {
    this.accounted += delta
  }

  private replace(old: Rec, rec: Rec): void {
    this.records.set(old[OWNER] as string, rec)
    if (this.recent === old) this.recent = rec
    this.rec = rec
  }

  private dropRecord(rec: Rec): void {
    this.records.delete(rec[OWNER] as string)
    if ((rec[OWNER] as string).startsWith(SPILL)) this.spilled--
    if (this.recent === rec) this.recent = undefined
    // Counted again from what the record holds, not kept per record: a write that accounted wrongly leaves a trace.
    let bytes = RECORD_BYTES + (rec[OWNER] as string).length
    for (let p = FIRST_KEY; p < rec.length; p = next(rec, p)) bytes += keyBytes(rec, p)
    this.accounted -= bytes
  }

  /**
   * Evicts whole records until both bounds hold. Runs after a whole batch, so that no operation works on a record
   * that an eviction has just dropped; one batch may overshoot by its own writes.
   */
  private fit(): void {
    while ((this.keyCount > this.maxKeys || this.accounted > this.maxBytes) && this.records.size > 0) {
      let step = this.hand?.next()
      if (!step || step.done) {
        this.hand = this.records.values()
        step = this.hand.next()
      }
      const rec = step.value as Rec
      if (rec[USED] === true) {
        rec[USED] = false
        continue
      }
      for (let p = FIRST_KEY; p < rec.length; p = next(rec, p)) this.keyCount--
      this.dropRecord(rec)
    }
  }

  // ---- Values

  /** Writes a string key's value and expiry, replacing whatever the key held. */
  private setString(key: string, p: number, value: string | number, expiresAt: number | undefined): void {
    if (p >= 0 && ((this.rec![p + META] as number) & KIND) !== STRING) {
      this.removeKey(p)
      p = this.seek(key)
    }
    if (p < 0) {
      this.insert(key, STRING, [value], expiresAt)
      return
    }
    this.put(p + HEADER, value)
    setExpiry(this.rec!, p, expiresAt)
  }

  /** Index (in the payload) of a small container's member, or -1; `stride` is 2 for hashes and sorted sets, 1 for sets. */
  private findMember(p: number, member: string, stride: number): number {
    const rec = this.rec!
    const base = p + HEADER
    const length = (rec[p + META] as number) >> LENGTH_SHIFT
    for (let i = 0; i < length; i += stride) if (rec[base + i] === member) return i
    return -1
  }

  /** Moves an existing small member (and its value) to the end of the payload, with a new value: newest last. */
  private moveToEnd(p: number, at: number, stride: number, value?: Slot): void {
    const rec = this.rec!
    const base = p + HEADER
    const last = base + ((rec[p + META] as number) >> LENGTH_SHIFT) - stride
    const member = rec[base + at]!
    if (value !== undefined) this.put(base + at + 1, value)
    const moved = rec[base + at + 1]!
    for (let i = base + at; i < last; i++) rec[i] = rec[i + stride]!
    rec[last] = member
    if (stride === 2) rec[last + 1] = moved
  }

  /** Turns a small container past SMALL_MEMBERS into a Map or Set. */
  private enlarge(p: number, kind: number): void {
    const rec = this.rec!
    const base = p + HEADER
    const length = (rec[p + META] as number) >> LENGTH_SHIFT
    let large: Large
    if (kind === SET) large = new Set(rec.slice(base, base + length) as string[])
    else {
      large = new Map()
      for (let i = base; i < base + length; i += 2) large.set(rec[i] as string, rec[i + 1] as string | number)
    }
    this.splice(p, 0, length, [large], ((rec[p + META] as number) & MS_MASK) | kind | LARGE | (1 << LENGTH_SHIFT))
  }

  private large<T extends Large>(p: number): T | undefined {
    const rec = this.rec!
    return (rec[p + META] as number) & LARGE ? (rec[p + HEADER] as T) : undefined
  }

  /** Sets a hash field; a new field goes last, and `moveToEnd` sends a changed one there too (hSet: newest written last). */
  private hashSet(p: number, field: string, value: string | number, moveToEnd: boolean): void {
    const map = this.large<Map<string, string | number>>(p)
    if (map) {
      const old = map.get(field)
      if (old !== undefined && moveToEnd) map.delete(field)
      map.set(field, value)
      this.grow(old === undefined ? LARGE_ENTRY_BYTES + memberBytes(HASH, field, value) : slotBytes(value) - slotBytes(old))
      return
    }
    const at = this.findMember(p, field, 2)
    if (at >= 0 && moveToEnd) this.moveToEnd(p, at, 2, value)
    else if (at >= 0) this.put(p + HEADER + at + 1, value)
    else {
      this.splice(p, (this.rec![p + META] as number) >> LENGTH_SHIFT, 0, [field, value])
      if ((this.rec![p + META] as number) >> LENGTH_SHIFT > 2 * SMALL_MEMBERS) this.enlarge(p, HASH)
    }
  }

  private hashGet(p: number, field: string): string | number | undefined {
    const map = this.large<Map<string, string | number>>(p)
    if (map) return map.get(field)
    const at = this.findMember(p, field, 2)
    return at < 0 ? undefined : (this.rec![p + HEADER + at + 1] as string | number)
  }

  private members(p: number): number {
    const meta = this.rec![p + META] as number
    if (meta & LARGE) return (this.rec![p + HEADER] as Large).size
    return (meta >> LENGTH_SHIFT) / ((meta & KIND) === SET ? 1 : 2)
  }

  /** Drops a hash's or set's oldest members past the limit (insertion order is age order). */
  private trim(p: number): void {
    const excess = this.members(p) - this.maxMembers
    if (excess <= 0) return
    const large = this.large(p)
    if (!large) {
      const stride = ((this.rec![p + META] as number) & KIND) === SET ? 1 : 2
      this.splice(p, 0, excess * stride, EMPTY)
      return
    }
    for (let n = 0; n < excess; n++) this.deleteLarge(p, large, large.keys().next().value as string)
  }

  /** Deletes a member of the large container of the key at p, keeping the account. */
  private deleteLarge(p: number, large: Large, member: string): boolean {
    const value = large instanceof Map ? large.get(member) : undefined
    if (!large.delete(member)) return false
    this.grow(-(LARGE_ENTRY_BYTES + memberBytes((this.rec![p + META] as number) & KIND, member, value)))
    return true
  }

  /** Removes a member (with its value) of a hash, set or sorted set; the key goes with its last member unless `keepKey`. */
  private removeMember(p: number, member: string, keepKey = false): boolean {
    const large = this.large(p)
    const stride = ((this.rec![p + META] as number) & KIND) === SET ? 1 : 2
    if (large) {
      if (!this.deleteLarge(p, large, member)) return false
    } else {
      const at = this.findMember(p, member, stride)
      if (at < 0) return false
      this.splice(p, at, stride, EMPTY)
    }
    if (!keepKey && this.members(p) === 0) this.removeKey(p)
    return true
  }

  /** A sorted set's [member, score] pairs, in insertion order. */
  private scored(p: number): [string, number][] {
    const zset = this.large<Map<string, number>>(p)
    if (zset) return [...zset]
    const rec = this.rec!
    const base = p + HEADER
    const pairs: [string, number][] = []
    for (let i = base; i < base + ((rec[p + META] as number) >> LENGTH_SHIFT); i += 2) pairs.push([rec[i] as string, rec[i + 1] as number])
    return pairs
  }

  private zAdd(p: number, score: number, member: string): void {
    const zset = this.large<Map<string, number>>(p)
    if (zset) {
      // Deleted first, so that a re-added member goes last like a new one.
      this.deleteLarge(p, zset, member)
      zset.set(member, score)
      this.grow(LARGE_ENTRY_BYTES + memberBytes(ZSET, member, score))
    } else {
      const at = this.findMember(p, member, 2)
      if (at >= 0) this.moveToEnd(p, at, 2, score)
      else this.splice(p, (this.rec![p + META] as number) >> LENGTH_SHIFT, 0, [member, score])
    }
    const excess = this.members(p) - this.maxMembers
    if (excess > 0) {
      // Sorted sets keep their highest scores (the most recent events in time windows); among equal scores the oldest go.
      const lowest = this.scored(p).sort((a, b) => a[1] - b[1]).slice(0, excess)
      for (const [m] of lowest) this.removeMember(p, m, true)
    }
    if (!this.large(p) && (this.rec![p + META] as number) >> LENGTH_SHIFT > 2 * SMALL_MEMBERS) this.enlarge(p, ZSET)
  }

  private sAdd(p: number, member: string): boolean {
    const set = this.large<Set<string>>(p)
    if (set) {
      const added = !this.deleteLarge(p, set, member)
      set.add(member)
      this.grow(LARGE_ENTRY_BYTES + memberBytes(SET, member))
      if (added) this.trim(p)
      return added
    }
    const at = this.findMember(p, member, 1)
    if (at >= 0) {
      this.moveToEnd(p, at, 1)
      return false
    }
    this.splice(p, (this.rec![p + META] as number) >> LENGTH_SHIFT, 0, [member])
    this.trim(p)
    if ((this.rec![p + META] as number) >> LENGTH_SHIFT > SMALL_MEMBERS) this.enlarge(p, SET)
    return true
  }

  private hGetAll(p: number): Record<string, string> {
    if (p < 0) return NO_FIELDS
    const record: Record<string, string> = Object.create(null)
    const map = this.large<Map<string, string | number>>(p)
    if (map) {
      for (const [field, value] of map) record[field] = text(value)
      return record
    }
    const rec = this.rec!
    const base = p + HEADER
    for (let i = base; i < base + ((rec[p + META] as number) >> LENGTH_SHIFT); i += 2) record[rec[i] as string] = text(rec[i + 1]!)
    return record
  }

  private sMembers(p: number): string[] {
    if (p < 0) return []
    const set = this.large<Set<string>>(p)
    if (set) return [...set]
    const rec = this.rec!
    return rec.slice(p + HEADER, p + HEADER + ((rec[p + META] as number) >> LENGTH_SHIFT)) as string[]
  }

  batch(): StoreBatch {
    const ops = this.spare ?? []
    this.spare = undefined
    return new MemoryBatch(this.runner, ops)
  }

  private readonly runner = (ops: Queued, length: number) => this.run(ops, length)

  private async run(ops: Queued, length: number): Promise<void> {
    if (this.closed) throw new Error('store is closed')
    this.time = this.now()
    this.batches++
    try {
      for (let i = 0; i < length; i += OP_STRIDE) {
        const result = this.operate(ops[i] as number, ops[i + 1] as string, ops[i + 2], ops[i + 3], ops[i + 4], ops[i + 5])
        ;(ops[i + 6] as PendingSlot<unknown> | undefined)?.resolve(result)
      }
    } finally {
      // Emptied (it must not keep keys, values and results alive) and kept for the next batch, unless it grew large.
      if (ops.length <= SPARE_OPS * OP_STRIDE) {
        ops.fill(undefined, 0, length)
        this.spare = ops
      }
      this.fit()
    }
  }

  private expiry(ttlMs: number): number | undefined {
    return ttlMs > 0 ? this.time + ttlMs : undefined
  }

  /** Runs one queued operation; its arguments are in the order of StoreBatch's methods. */
  private operate(code: number, key: string, a: unknown, b: unknown, c: unknown, d: unknown): unknown {
    switch (code) {
      case GET: {
        const p = this.typed(key, STRING)
        return p < 0 ? null : text(this.rec![p + HEADER]!)
      }
      case SET_OP:
        return this.setString(key, this.seek(key), compact(a as string), this.expiry(b as number))
      case SET_IF_ABSENT: {
        if (this.seek(key) >= 0) return false
        this.insert(key, STRING, [compact(a as string)], this.expiry(b as number))
        return true
      }
      case GET_SET: {
        const p = this.typed(key, STRING)
        const previous = p < 0 ? null : text(this.rec![p + HEADER]!)
        this.setString(key, p, compact(a as string), this.expiry(b as number))
        return previous
      }
      case DEL: {
        const p = this.seek(key)
        if (p < 0) return 0
        this.removeKey(p)
        return 1
      }
      case INCR_BY: {
        const p = this.typed(key, STRING)
        const n = p < 0 ? 0 : Number(this.rec![p + HEADER])
        if (!Number.isFinite(n)) throw new Error(`ERR value at "${key}" is not a number`)
        const next = n + (a as number)
        // Like INCRBY followed by PEXPIRE only when a TTL is given: without one the key keeps its expiry.
        this.setString(key, p, next, (b as number) > 0 ? this.time + (b as number) : p < 0 ? undefined : expiresAt(this.rec!, p))
        return next
      }
      case H_GET_ALL:
        return this.hGetAll(this.typed(key, HASH))
      case H_SET: {
        const p = this.open(key, HASH, b as number)
        // A written field goes last, so that the most recently written fields are the ones trimming keeps.
        const fields = a as Record<string, string>
        // for-in rather than Object.entries: no array of pairs per write (callers pass plain records).
        for (const field in fields) this.hashSet(p, field, compact(fields[field]!), true)
        return this.trim(p)
      }
      case H_DEL: {
        const p = this.typed(key, HASH)
        return p >= 0 && this.removeMember(p, a as string) ? 1 : 0
      }
      case H_INCR_BY: {
        const p = this.open(key, HASH, c as number)
        const next = Number(this.hashGet(p, a as string) ?? 0) + (b as number)
        this.hashSet(p, a as string, next, false)
        this.trim(p)
        return next
      }
      case H_INCR_CLAMPED: {
        // a: field, b: by, c: [initial, min, max], d: ttlMs
        const [initial, min, max] = c as [number, number, number]
        const p = this.open(key, HASH, d as number)
        const raw = this.hashGet(p, a as string)
        const current = raw === undefined ? initial : Number(raw)
        const next = Math.min(max, Math.max(min, current + (b as number)))
        this.hashSet(p, a as string, next, false)
        this.trim(p)
        return next
      }
      case S_ADD:
        return this.sAdd(this.open(key, SET, b as number), a as string)
      case S_REM: {
        const p = this.typed(key, SET)
        return p >= 0 && this.removeMember(p, a as string) ? 1 : 0
      }
      case S_MEMBERS:
        return this.sMembers(this.typed(key, SET))
      case S_CARD: {
        const p = this.typed(key, SET)
        return p < 0 ? 0 : this.members(p)
      }
      case Z_ADD:
        return this.zAdd(this.open(key, ZSET, c as number), a as number, b as string)
      case Z_REM_RANGE: {
        const p = this.typed(key, ZSET)
        if (p < 0) return 0
        const doomed = this.scored(p).filter(([, score]) => score >= (a as number) && score <= (b as number))
        for (const [member] of doomed) this.removeMember(p, member)
        return doomed.length
      }
      case Z_COUNT: {
        const p = this.typed(key, ZSET)
        if (p < 0) return 0
        let n = 0
        for (const [, score] of this.scored(p)) if (score >= (a as number) && score <= (b as number)) n++
        return n
      }
      case Z_RANGE: {
        const p = this.typed(key, ZSET)
        if (p < 0) return []
        return this.scored(p)
          .filter(([, score]) => score >= (a as number) && score <= (b as number))
          .sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1))
          .map(([member]) => member)
      }
      default: {
        // P_TTL
        const p = this.seek(key)
        if (p < 0) return -2
        const at = expiresAt(this.rec!, p)
        return at === undefined ? -1 : at - this.time
      }
    }
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('store is closed')
  }

  async close(): Promise<void> {
    this.closed = true
    this.records.clear()
    this.interned.clear()
    this.hand = this.rec = this.recent = this.spare = undefined
    this.accounted = 0
    this.keyCount = 0
    this.spilled = 0
  }
}

/** Where the key after the one at p starts. */
function next(rec: Rec, p: number): number {
  return p + HEADER + ((rec[p + META] as number) >> LENGTH_SHIFT)
}

function expiresAt(rec: Rec, p: number): number | undefined {
  const ms = ((rec[p + META] as number) & MS_MASK) >> MS_SHIFT
  if (ms === NO_EXPIRY) return undefined
  return ms === EXACT ? (rec[p + EXPIRY] as number) : (rec[p + EXPIRY] as number) * 1000 + ms
}

/** expiresAt(rec, p) <= now, without making the time a boxed number on every key a look-up passes. */
function expired(rec: Rec, p: number, now: number): boolean {
  const ms = ((rec[p + META] as number) & MS_MASK) >> MS_SHIFT
  if (ms === NO_EXPIRY) return false
  const at = rec[p + EXPIRY] as number
  return (ms === EXACT ? at : at * 1000 + ms) <= now
}

/** Whole seconds in `expiry`, the milliseconds in `meta`: two small integers, exact for a clock in whole ms. */
function setExpiry(rec: Rec, p: number, at: number | undefined): void {
  const seconds = at === undefined ? 0 : Math.floor(at / 1000)
  let ms = at === undefined ? NO_EXPIRY : at - seconds * 1000
  if (at !== undefined && !(Number.isInteger(ms) && ms >= 0 && ms < 1000)) ms = EXACT
  rec[p + EXPIRY] = ms === EXACT ? at! : seconds
  rec[p + META] = ((rec[p + META] as number) & ~MS_MASK) | (ms << MS_SHIFT)
}

/** The accounted size of the key at p: its header, suffix and payload. */
function keyBytes(rec: Rec, p: number): number {
  let bytes = KEY_BYTES + (rec[p + SUFFIX] as string).length
  for (let i = p + HEADER; i < next(rec, p); i++) bytes += elementBytes(rec[p + META] as number, i - p - HEADER, rec[i]!)
  return bytes
}

/** A record of exactly `length` elements, the parts' concatenation: an array grown in place keeps spare room. */
function build(length: number, ...parts: Slot[][]): Rec {
  const rec: Rec = new Array(length)
  let j = 0
  for (const part of parts) for (const item of part) rec[j++] = item
  return rec
}
