import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { isIP } from 'node:net'
import { endianness } from 'node:os'
import { join } from 'node:path'

/**
 * geoip-lite's city database read in place: its files stay on disk (the page cache holds them, not this process),
 * and each lookup reads the few kilobytes it needs. Loading them the way geoip-lite does costs about 145 MB.
 *
 * The files, all big-endian:
 * - geoip-city.dat, 24 bytes per IPv4 range: first address, last address, location id (0xffffffff: none),
 *   latitude and longitude in 1/10,000 degree (signed), accuracy radius in km.
 * - geoip-city6.dat, 48 bytes per IPv6 range: first and last address (16 bytes each), then the same four fields.
 * - geoip-city-names.dat, 88 bytes per location id; the first two are the country code, NUL-padded (then region,
 *   time zone and city, which are not needed here).
 *
 * The answers are geoip-lite's, range for range, including where its data disagrees with itself: some IPv6
 * ranges overlap or are out of order, and geoip-lite's binary search (which compares IPv6 addresses by their
 * first 64 bits only) then answers according to the records its probes happen to land on. So the search here
 * probes exactly the same records: the records of its first levels are kept in memory (about 260 KB per file),
 * and the hundred or so records left below them are read with one positioned read.
 *
 * Two differences, both on purpose: addresses are parsed here by the book (geoip-lite's own parser misreads some
 * compressed IPv6 spellings, e.g. 2001:db8::1 as 2001:db8:0:1::1, and IPv4-mapped IPv6 written in hex); and
 * geoip-lite's refusal of private IPv4 ranges is left to the caller, which turns them away before asking.
 */

/** What the database says about an address. */
export interface GeoipRecord {
  country: string
  lat: number
  lon: number
  /** Accuracy radius, km; 0 when unknown. */
  area: number
}

export interface GeoipData {
  /** The record for an IPv4 or IPv6 address (IPv4-mapped IPv6 as IPv4); undefined when there is none. */
  lookup(ip: string): GeoipRecord | undefined
}

const NO_LOCATION = 0xffffffff
/** A Uint32Array reads the host's byte order; the files are big-endian. */
const LITTLE_ENDIAN_HOST = endianness() === 'LE'
const NAME_RECORD = 88
/** Records left below the in-memory levels of the search, at most (read with one positioned read). */
const LEAF_RECORDS = 128
/** Records read per call while checking a file. */
const SCAN_RECORDS = 1 << 15

interface Layout {
  file: string
  recordSize: number
  /** 32-bit words compared per address: 1 for IPv4, 2 (the first 64 bits) for IPv6. */
  words: 1 | 2
  /** Where the last address starts in a record. */
  lastAt: number
  /** Where the location id starts; latitude, longitude and radius follow. */
  locationAt: number
}

const IPV4: Layout = { file: 'geoip-city.dat', recordSize: 24, words: 1, lastAt: 4, locationAt: 8 }
const IPV6: Layout = { file: 'geoip-city6.dat', recordSize: 48, words: 2, lastAt: 16, locationAt: 32 }
const NAMES = 'geoip-city-names.dat'

/** A data file that is missing, unreadable or not in geoip-lite's format: an operator's problem, found at start. */
export class GeoipDataError extends Error {
  override name = 'GeoipDataError'
  constructor(path: string, problem: string) {
    super(`geoip-lite's data file ${path} is unusable: ${problem}`)
  }
}

function openData(path: string): { fd: number; size: number } {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    throw new GeoipDataError(path, (err as Error).message)
  }
  return { fd, size: fstatSync(fd).size }
}

function readFully(fd: number, buffer: Buffer, length: number, position: number, path: string): void {
  let done = 0
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done)
    if (n === 0) throw new GeoipDataError(path, `it ended at byte ${position + done} while being read`)
    done += n
  }
}

/** -1, 0 or 1 as (hi, lo) is below, at or above the address at `at` in `buffer` (lo ignored for one word). */
function compare(words: 1 | 2, hi: number, lo: number, buffer: Buffer, at: number): number {
  const h = buffer.readUInt32BE(at)
  if (hi !== h) return hi < h ? -1 : 1
  if (words === 1) return 0
  const l = buffer.readUInt32BE(at + 4)
  return lo === l ? 0 : lo < l ? -1 : 1
}

/** One file's ranges, searched the way geoip-lite searches them. */
class RangeTable {
  private readonly count: number
  /** Levels of the search kept in memory; node i's children are 2i + 1 (lower half) and 2i + 2 (upper). */
  private readonly depth: number
  /** Per node: first address, then last address, `words` 32-bit words each. */
  private readonly nodes: Uint32Array
  private readonly leaf: Buffer
  private readonly bounds: Buffer

  constructor(
    private readonly layout: Layout,
    private readonly fd: number,
    size: number,
    private readonly path: string,
    locations: number,
  ) {
    const { recordSize } = layout
    if (size === 0 || size % recordSize !== 0) {
      throw new GeoipDataError(path, `its ${size} bytes are not whole ${recordSize}-byte records`)
    }
    this.count = size / recordSize
    let depth = 0
    while ((this.count - 1) / 2 ** depth > LEAF_RECORDS - 1) depth++
    this.depth = depth
    this.nodes = new Uint32Array((2 ** depth - 1) * 2 * layout.words)

    // The records the in-memory levels probe, in file order, with their node numbers.
    const probes: { line: number; node: number }[] = []
    let widest = 1
    const plan = (first: number, last: number, node: number, level: number) => {
      if (level >= depth || last - first < 2) {
        widest = Math.max(widest, last - first + 1)
        return
      }
      const line = first + Math.round((last - first) / 2)
      plan(first, line, 2 * node + 1, level + 1)
      probes.push({ line, node })
      plan(line, last, 2 * node + 2, level + 1)
    }
    plan(0, this.count - 1, 0, 0)
    this.leaf = Buffer.alloc(widest * recordSize)

    // One pass over the file: every record must make sense, and the probed ones are kept. The chunk is read as
    // 32-bit words, byte-swapped in place once per chunk: a read per field through the Buffer took most of the
    // server's start-up time that the database costs.
    const chunk = Buffer.alloc(SCAN_RECORDS * recordSize)
    const words = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length / 4)
    const w = layout.words
    const stride = recordSize / 4
    const lastAt = layout.lastAt / 4
    const locationAt = layout.locationAt / 4
    let next = 0
    for (let start = 0; start < this.count; start += SCAN_RECORDS) {
      const n = Math.min(SCAN_RECORDS, this.count - start)
      readFully(fd, chunk, n * recordSize, start * recordSize, path)
      if (LITTLE_ENDIAN_HOST) chunk.subarray(0, n * recordSize).swap32()
      for (let i = 0, at = 0; i < n; i++, at += stride) {
        const hi = words[at]!
        const lastHi = words[at + lastAt]!
        if (hi > lastHi || (w === 2 && hi === lastHi && words[at + 1]! > words[at + lastAt + 1]!)) {
          throw new GeoipDataError(path, `record ${start + i} ends before it starts`)
        }
        const location = words[at + locationAt]!
        if (location !== NO_LOCATION && location >= locations) {
          throw new GeoipDataError(path, `record ${start + i} names location ${location}, and there are ${locations}`)
        }
        const probe = probes[next]
        if (probe?.line === start + i) {
          const into = probe.node * 2 * w
          for (let k = 0; k < w; k++) {
            this.nodes[into + k] = words[at + k]!
            this.nodes[into + w + k] = words[at + lastAt + k]!
          }
          next++
        }
      }
    }
    // geoip-lite answers nothing outside the first record's first address and the last record's last one.
    this.bounds = Buffer.alloc(recordSize * 2)
    readFully(fd, this.bounds, recordSize, 0, path)
    readFully(fd, this.bounds.subarray(recordSize), recordSize, (this.count - 1) * recordSize, path)
  }

  /** -1, 0 or 1 as (hi, lo) is before, inside or after the range of an in-memory node. */
  private side(node: number, hi: number, lo: number): number {
    const { words } = this.layout
    const at = node * 2 * words
    const n = this.nodes
    if (hi < n[at]! || (words === 2 && hi === n[at]! && lo < n[at + 1]!)) return -1
    const last = at + words
    return hi > n[last]! || (words === 2 && hi === n[last]! && lo > n[last + 1]!) ? 1 : 0
  }

  /** The record holding the address (hi, lo), as a buffer and an offset into it; undefined when none does. */
  find(hi: number, lo: number): { buffer: Buffer; at: number } | undefined {
    const { words, recordSize, lastAt } = this.layout
    if (compare(words, hi, lo, this.bounds, 0) < 0 || compare(words, hi, lo, this.bounds, recordSize + lastAt) > 0) {
      return undefined
    }
    let first = 0
    let last = this.count - 1
    let node = 0
    for (let level = 0; level < this.depth && last - first >= 2; level++) {
      const line = first + Math.round((last - first) / 2)
      const side = this.side(node, hi, lo)
      if (side === 0) {
        readFully(this.fd, this.leaf, recordSize, line * recordSize, this.path)
        return { buffer: this.leaf, at: 0 }
      }
      if (side < 0) {
        last = line
        node = 2 * node + 1
      } else {
        first = line
        node = 2 * node + 2
      }
    }
    const base = first
    readFully(this.fd, this.leaf, (last - first + 1) * recordSize, base * recordSize, this.path)
    for (;;) {
      const line = first + Math.round((last - first) / 2)
      const at = (line - base) * recordSize
      const below = compare(words, hi, lo, this.leaf, at) < 0
      if (!below && compare(words, hi, lo, this.leaf, at + lastAt) <= 0) return { buffer: this.leaf, at }
      if (first === last) return undefined
      // Two left: the upper one missed, and geoip-lite tries the lower one whichever side the address fell on.
      if (last - first === 1) last = first
      else if (below) last = line
      else first = line
    }
  }
}

/** An address as the search compares it: IPv4 (one word) or the first 64 bits of IPv6 (two words). */
function parse(ip: string): { v6: boolean; hi: number; lo: number } | undefined {
  const family = isIP(ip)
  if (family === 4) return { v6: false, hi: ipv4Number(ip), lo: 0 }
  if (family !== 6) return undefined
  let text = ip.replace(/%.*$/, '')
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted) {
    const v4 = ipv4Number(dotted[1]!)
    text = text.slice(0, dotted.index) + `${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`
  }
  const [head, tail] = text.split('::') as [string, string | undefined]
  const front = head ? head.split(':') : []
  const back = tail ? tail.split(':') : []
  const zeros = Array<string>(8 - front.length - back.length).fill('0')
  const groups = [...front, ...zeros, ...back].map((group) => parseInt(group, 16))
  const g = (i: number) => groups[i]!
  // ::ffff:0:0/96 is IPv4, in whichever spelling: geoip-lite looks those up among IPv4 ranges too.
  if (g(0) === 0 && g(1) === 0 && g(2) === 0 && g(3) === 0 && g(4) === 0 && g(5) === 0xffff) {
    return { v6: false, hi: g(6) * 0x10000 + g(7), lo: 0 }
  }
  return { v6: true, hi: g(0) * 0x10000 + g(1), lo: g(2) * 0x10000 + g(3) }
}

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0)
}

/**
 * Each location's country, as an index into the distinct country codes: about 230 KB for geoip-lite's 116,000
 * locations, which saves every lookup a second read.
 */
function readCountries(fd: number, size: number, path: string): { of: Uint16Array; codes: string[] } {
  if (size === 0 || size % NAME_RECORD !== 0) {
    throw new GeoipDataError(path, `its ${size} bytes are not whole ${NAME_RECORD}-byte records`)
  }
  const count = size / NAME_RECORD
  const of = new Uint16Array(count)
  const codes: string[] = []
  // By the code's two bytes: a string is made once per distinct code, not once per location.
  const index = new Map<number, number>()
  const byCode = new Map<string, number>()
  const chunk = Buffer.alloc(SCAN_RECORDS * NAME_RECORD)
  for (let start = 0; start < count; start += SCAN_RECORDS) {
    const n = Math.min(SCAN_RECORDS, count - start)
    readFully(fd, chunk, n * NAME_RECORD, start * NAME_RECORD, path)
    for (let i = 0; i < n; i++) {
      const bytes = chunk.readUInt16BE(i * NAME_RECORD)
      let at = index.get(bytes)
      if (at === undefined) {
        const code = chunk.toString('utf8', i * NAME_RECORD, i * NAME_RECORD + 2).replace(/\0.*/, '')
        at = byCode.get(code)
        if (at === undefined) {
          at = codes.push(code) - 1
          byCode.set(code, at)
        }
        index.set(bytes, at)
      }
      of[start + i] = at
    }
  }
  return { of, codes }
}

/**
 * Opens geoip-lite's city database in `dir` and checks every record of it; throws, naming the file, when a file is
 * missing or malformed. The two range files stay open for the life of the process.
 */
export function openGeoipData(dir: string): GeoipData {
  const opened: number[] = []
  const open = (file: string) => {
    const data = openData(join(dir, file))
    opened.push(data.fd)
    return { ...data, path: join(dir, file) }
  }
  try {
    const names = open(NAMES)
    const countries = readCountries(names.fd, names.size, names.path)
    const v4File = open(IPV4.file)
    const v4 = new RangeTable(IPV4, v4File.fd, v4File.size, v4File.path, countries.of.length)
    const v6File = open(IPV6.file)
    const v6 = new RangeTable(IPV6, v6File.fd, v6File.size, v6File.path, countries.of.length)
    closeSync(names.fd)
    return {
      lookup(ip) {
        const address = parse(ip)
        if (!address) return undefined
        const layout = address.v6 ? IPV6 : IPV4
        const hit = (address.v6 ? v6 : v4).find(address.hi, address.lo)
        if (!hit) return undefined
        const { buffer, at } = hit
        const location = buffer.readUInt32BE(at + layout.locationAt)
        if (location === NO_LOCATION) return undefined
        return {
          country: countries.codes[countries.of[location]!]!,
          lat: buffer.readInt32BE(at + layout.locationAt + 4) / 10000,
          lon: buffer.readInt32BE(at + layout.locationAt + 8) / 10000,
          area: buffer.readUInt32BE(at + layout.locationAt + 12),
        }
      },
    }
  } catch (err) {
    for (const fd of opened) closeSync(fd)
    throw err
  }
}
