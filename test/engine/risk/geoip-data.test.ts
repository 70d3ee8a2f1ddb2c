import { closeSync, openSync, readSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import t, { type Test } from 'tap'
import { seededRandom } from '../../../scripts/bench/generate-policy.js'
import { classifyIp } from '../../../src/engine/ip-address.js'
import { createGeoipLookup, type GeoFix } from '../../../src/engine/risk/geo.js'
import { openGeoipData } from '../../../src/engine/risk/geoip-data.js'

/**
 * The reader of geoip-lite's files against geoip-lite itself, loaded whole: every answer must be the one the lookup
 * gave when it asked geoip-lite (a fix when geoip-lite has coordinates and a country, radius `area` or the default).
 */

interface GeoipLite {
  lookup(ip: string): { ll: [number | null, number | null]; country: string; area?: number } | null
}

const require = createRequire(import.meta.url)
const geoipLite = require('geoip-lite') as GeoipLite
const DATA = join(dirname(require.resolve('geoip-lite/package.json')), 'data')
const DEFAULT_RADIUS = 500

/** A cache of one: every address below is looked up, not remembered. */
const geo = createGeoipLookup({ cacheSize: 1 })

function expected(ip: string, spelledForGeoipLite: string): GeoFix | undefined {
  if (classifyIp(ip) !== 'public') return undefined
  const hit = geoipLite.lookup(spelledForGeoipLite)
  if (!hit || hit.ll[0] === null || hit.ll[1] === null || !hit.country) return undefined
  return { lat: hit.ll[0], lon: hit.ll[1], radiusKm: hit.area && hit.area > 0 ? hit.area : DEFAULT_RADIUS, country: hit.country }
}

/** Compares a list of addresses; returns the disagreements (at most 10) and how many had a fix. */
function compare(addresses: readonly { ip: string; theirs: string }[]) {
  const wrong: { ip: string; got: GeoFix | undefined; want: GeoFix | undefined }[] = []
  let fixes = 0
  for (const { ip, theirs } of addresses) {
    const got = geo.lookup(ip)
    const want = expected(ip, theirs)
    if (want) fixes++
    const same =
      got === want ||
      (got && want && got.lat === want.lat && got.lon === want.lon && got.radiusKm === want.radiusKm && got.country === want.country)
    if (!same && wrong.length < 10) wrong.push({ ip, got, want })
  }
  return { wrong, fixes }
}

const v4Text = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')

const MASK64 = (1n << 64n) - 1n
/** All eight groups, without leading zeros: geoip-lite's own parser reads only this spelling of IPv6 right. */
function v6Full(hi: bigint, lo: bigint): string {
  const groups: string[] = []
  for (const half of [hi, lo]) for (let shift = 48n; shift >= 0n; shift -= 16n) groups.push(((half >> shift) & 0xffffn).toString(16))
  return groups.join(':')
}
/** The spelling the PDP is given: compressed (the URL parser's canonical form), full, or upper case, in turn. */
function v6Spellings(hi: bigint, lo: bigint, turn: number): { ip: string; theirs: string } {
  const full = v6Full(hi, lo)
  const ip = turn % 3 === 0 ? new URL(`http://[${full}]`).hostname.slice(1, -1) : turn % 3 === 1 ? full : full.toUpperCase()
  return { ip, theirs: full }
}

/** Reads a data file in chunks, handing each record's buffer and offset to `visit`. */
function scan(file: string, recordSize: number, visit: (record: Buffer, at: number, index: number) => void) {
  const fd = openSync(join(DATA, file), 'r')
  const chunk = Buffer.alloc(recordSize * 65536)
  try {
    for (let index = 0, got; (got = readSync(fd, chunk, 0, chunk.length, index * recordSize)) > 0; ) {
      for (let at = 0; at + recordSize <= got; at += recordSize) visit(chunk, at, index++)
    }
  } finally {
    closeSync(fd)
  }
}

const random = seededRandom(17)
const u32 = () => Math.floor(random() * 2 ** 32)
const u64 = () => (BigInt(u32()) << 32n) | BigInt(u32())

t.test('IPv4: the first and last address of sampled ranges and their neighbours, and 100,000 random addresses', async (t) => {
  const addresses: { ip: string; theirs: string }[] = []
  scan('geoip-city.dat', 24, (record, at, index) => {
    if (index % 211 !== 0) return
    const first = record.readUInt32BE(at)
    const last = record.readUInt32BE(at + 4)
    for (const n of [first - 1, first, last, last + 1]) if (n >= 0 && n < 2 ** 32) addresses.push({ ip: v4Text(n), theirs: v4Text(n) })
  })
  t.ok(addresses.length > 60_000, `${addresses.length} boundary addresses`)
  const boundaries = compare(addresses)
  t.same(boundaries.wrong, [], 'range boundaries agree')
  t.ok(boundaries.fixes > addresses.length / 2, `${boundaries.fixes} of them placed`)

  const randomAddresses = Array.from({ length: 100_000 }, () => v4Text(u32())).map((ip) => ({ ip, theirs: ip }))
  const randoms = compare(randomAddresses)
  t.same(randoms.wrong, [], 'random addresses agree')
  t.ok(randoms.fixes > 50_000, `${randoms.fixes} of them placed`)

  const mapped = randomAddresses.slice(0, 2000).flatMap(({ ip }) => [`::ffff:${ip}`, `0:0:0:0:0:ffff:${ip}`].map((m) => ({ ip: m, theirs: m })))
  t.same(compare(mapped).wrong, [], 'IPv4-mapped IPv6, in both spellings geoip-lite takes as IPv4')
})

t.test('IPv6: the bounds of sampled ranges and of every out-of-order one, and 20,000 random addresses', async (t) => {
  // geoip-lite compares the first 64 bits of an IPv6 address; the last 64 vary freely.
  const ranges: { first: bigint; last: bigint }[] = []
  let previousLast = -1n
  let outOfOrder = 0
  scan('geoip-city6.dat', 48, (record, at, index) => {
    const first = record.readBigUInt64BE(at)
    const last = record.readBigUInt64BE(at + 16)
    // Where the data overlaps itself, geoip-lite's answer depends on which records its search probes.
    const disordered = first <= previousLast
    if (disordered) outOfOrder++
    if (index % 97 === 0 || disordered) ranges.push({ first, last })
    previousLast = last
  })
  t.ok(outOfOrder > 0, `${outOfOrder} ranges out of order or overlapping in geoip-lite's data`)
  const addresses: { ip: string; theirs: string }[] = []
  let turn = 0
  for (const { first, last } of ranges) {
    for (const hi of [first - 1n, first, last, last + 1n]) {
      if (hi >= 0n && hi <= MASK64) addresses.push(v6Spellings(hi, turn % 2 ? u64() : 0n, turn++))
    }
  }
  t.ok(addresses.length > 50_000, `${addresses.length} boundary addresses`)
  const boundaries = compare(addresses)
  t.same(boundaries.wrong, [], 'range boundaries agree')
  t.ok(boundaries.fixes > addresses.length / 2, `${boundaries.fixes} of them placed`)

  // Half anywhere in 2000::/3 (global unicast), half inside a sampled range.
  const randomAddresses = Array.from({ length: 20_000 }, (_, i) => {
    const range = ranges[Math.floor(random() * ranges.length)]!
    const hi = i % 2 ? (0x2000n << 48n) | (u64() & ((1n << 61n) - 1n)) : range.first + (u64() % (range.last - range.first + 1n))
    return v6Spellings(hi, u64(), i)
  })
  const randoms = compare(randomAddresses)
  t.same(randoms.wrong, [], 'random addresses agree')
  t.ok(randoms.fixes > 9_000, `${randoms.fixes} of them placed`)
})

t.test('private, reserved and malformed addresses have no fix', async (t) => {
  for (const ip of [
    '10.1.2.3',
    '172.16.5.4',
    '172.31.255.255',
    '192.168.1.1',
    '127.0.0.1',
    '169.254.1.1',
    '100.64.0.1',
    '0.1.2.3',
    '224.0.0.1',
    '255.255.255.255',
    '192.0.2.1',
    '198.51.100.7',
    '203.0.113.9',
    '198.18.0.1',
    '::',
    '::1',
    'fe80::1',
    'fe80::1%eth0',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '2001:db8::1',
    '::ffff:10.0.0.1',
    '::ffff:a00:1',
    '0:0:0:0:0:ffff:192.168.1.1',
    '1.2.3',
    '1.2.3.256',
    '2001:::1',
    '',
  ]) {
    t.equal(geo.lookup(ip), undefined, ip)
  }
})

/**
 * Files in geoip-lite's format written by the test: 1,000 IPv4 and 300 IPv6 ranges (enough for the in-memory levels
 * of the search) over three locations, with `damage` applied to the IPv4 or IPv6 records before they are written.
 */
async function syntheticData(
  t: Test,
  damage: { v4?: (records: number[][]) => void; v6?: (records: number[][]) => void; trailingByte?: boolean } = {},
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pdp-geoip-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const names = Buffer.alloc(3 * 88)
  names.write('GB', 0)
  names.write('AU', 88)
  const write = async (file: string, records: number[][]) => {
    const buffer = Buffer.alloc(records.length * records[0]!.length * 4 + (damage.trailingByte ? 1 : 0))
    records.flat().forEach((word, i) => buffer.writeUInt32BE(word >>> 0, i * 4))
    await writeFile(join(dir, file), buffer)
  }
  // [first, last, location, lat, lon, radius]; latitude and longitude in 1/10,000 degree, signed.
  const v4 = Array.from({ length: 1000 }, (_, i) => [0x05000000 + i * 1000, 0x05000000 + i * 1000 + 999, i % 3 === 2 ? 0xffffffff : i % 3, 515000 + i, -1000 - i, 10 + i])
  // [first hi, lo, 0, 0, last hi, lo, 0, 0, location, lat, lon, radius]: ranges by their first 64 bits.
  const v6 = Array.from({ length: 300 }, (_, i) => [0x2a000000, i * 16, 0, 0, 0x2a000000, i * 16 + 15, 0xffffffff, 0xffffffff, i % 2, -338000 - i, 1512000 + i, 50])
  damage.v4?.(v4)
  damage.v6?.(v6)
  await writeFile(join(dir, 'geoip-city-names.dat'), names)
  await write('geoip-city.dat', v4)
  await write('geoip-city6.dat', v6)
  return dir
}

t.test('its own reading of the files: every field of a record, in both files', async (t) => {
  const data = openGeoipData(await syntheticData(t))
  for (const i of [0, 1, 499, 998]) {
    const hit = data.lookup(v4Text(0x05000000 + i * 1000 + 500))
    t.same(hit, i % 3 === 2 ? undefined : { country: i % 3 === 0 ? 'GB' : 'AU', lat: (515000 + i) / 10000, lon: (-1000 - i) / 10000, area: 10 + i }, `IPv4 range ${i}`)
  }
  t.equal(data.lookup('4.255.255.255'), undefined, 'below the first range')
  for (const i of [0, 150, 299]) {
    const hit = data.lookup(`2a00:0:0:${(i * 16 + 7).toString(16)}::1`)
    t.same(hit, { country: i % 2 === 0 ? 'GB' : 'AU', lat: (-338000 - i) / 10000, lon: (1512000 + i) / 10000, area: 50 }, `IPv6 range ${i}`)
  }
})

t.test('damaged files stop the reader at the record at fault, naming it', async (t) => {
  const cases: [string, Parameters<typeof syntheticData>[1], RegExp][] = [
    ['an IPv4 range that ends before it starts', { v4: (r) => (r[700]![1] = r[700]![0]! - 1) }, /geoip-city\.dat is unusable: record 700 ends before it starts/],
    [
      'an IPv6 range whose last address is below its first in the second word',
      { v6: (r) => (r[42]![5] = r[42]![1]! - 1) },
      /geoip-city6\.dat is unusable: record 42 ends before it starts/,
    ],
    ['a location that does not exist', { v4: (r) => (r[3]![2] = 3) }, /geoip-city\.dat is unusable: record 3 names location 3, and there are 3/],
    ['a file that is not whole records', { trailingByte: true }, /geoip-city\.dat is unusable: its 24001 bytes are not whole 24-byte records/],
  ]
  for (const [name, damage, message] of cases) {
    const dir = await syntheticData(t, damage)
    t.throws(() => openGeoipData(dir), message, name)
  }
})
