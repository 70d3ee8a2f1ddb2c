import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createGeoipLookup, haversineKm } from '../../../src/engine/risk/geo.js'
import { travel } from '../../../src/engine/risk/location.js'
import { PLACES } from './helpers.js'

t.test('geoip-lite places London and Sydney, and nothing for private addresses', async (t) => {
  const geo = createGeoipLookup()
  t.match(geo.lookup('81.2.69.142'), { country: 'GB', radiusKm: 100 })
  t.match(geo.lookup('103.86.96.100'), { country: 'AU', radiusKm: 20 })
  t.match(geo.lookup('::ffff:81.2.69.142'), { country: 'GB' }, 'IPv4-mapped IPv6')
  // The address above, spelled in hex (geoip-lite itself reads '5102:458e' as a dotted quad, and looks up 238.0.0.0).
  t.match(geo.lookup('::ffff:5102:458e'), { country: 'GB' }, 'IPv4-mapped IPv6 in hex')
  for (const ip of ['10.0.0.1', '127.0.0.1', '::1', '192.168.0.10', 'garbage']) t.equal(geo.lookup(ip), undefined, ip)
  t.equal(geo.lookup('1.1.1.1'), undefined, 'an address the database cannot place')
})

t.test('distance and travel speed honour the accuracy radii', async (t) => {
  const london = PLACES['198.51.1.1']!
  const paris = PLACES['198.51.1.2']!
  t.ok(Math.abs(haversineKm(london, paris) - 344) < 2, 'London-Paris is about 344 km')
  const cambridge = PLACES['198.51.1.4']!
  const near = travel({ ...london, at: 0 }, cambridge, 60_000)
  t.equal(near.distanceKm, 0, 'fixes whose error circles overlap never count as travel')
  t.equal(near.speedKmh, 0)
  const far = travel({ ...london, at: 0 }, paris, 3_600_000)
  t.ok(far.distanceKm > 300 && far.distanceKm < 306, 'distance less both radii')
  t.ok(far.speedKmh > 300 && far.speedKmh < 306)
  const instant = travel({ ...london, at: 5000 }, paris, 5000)
  t.ok(instant.speedKmh > 1_000_000, 'no time elapsed: counted as one second')
})

/** geoip-lite's three city files, written by hand: names (country codes), IPv4 ranges, IPv6 ranges. */
function database(parts: { names?: Buffer; v4?: Buffer; v6?: Buffer } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'geoip-'))
  const names = Buffer.alloc(88 * 3)
  names.write('GB', 0)
  names.write('AU', 88)
  writeFileSync(join(dir, 'geoip-city-names.dat'), parts.names ?? names)
  writeFileSync(
    join(dir, 'geoip-city.dat'),
    parts.v4 ??
      Buffer.concat([
        v4Range(0x01000000, 0x010000ff, 0, 51.5, -0.1, 50),
        v4Range(0x02000000, 0x020000ff, 1, -33.9, 151.2, 0),
        v4Range(0x03000000, 0x030000ff, 0xffffffff, 0, 0, 0),
        v4Range(0x04000000, 0x040000ff, 2, 10, 10, 10),
      ]),
  )
  writeFileSync(join(dir, 'geoip-city6.dat'), parts.v6 ?? v6Range(0x2a00_0000_0000_0000n, 0x2a00_0000_0000_ffffn, 0, 48.9, 2.4, 100))
  return dir
}

function v4Range(first: number, last: number, location: number, lat: number, lon: number, area: number): Buffer {
  const b = Buffer.alloc(24)
  b.writeUInt32BE(first, 0)
  b.writeUInt32BE(last, 4)
  b.writeUInt32BE(location, 8)
  b.writeInt32BE(Math.round(lat * 10000), 12)
  b.writeInt32BE(Math.round(lon * 10000), 16)
  b.writeUInt32BE(area, 20)
  return b
}

function v6Range(first: bigint, last: bigint, location: number, lat: number, lon: number, area: number): Buffer {
  const b = Buffer.alloc(48)
  b.writeBigUInt64BE(first, 0)
  b.writeBigUInt64BE(last, 16)
  b.writeBigUInt64BE(0xffff_ffff_ffff_ffffn, 24)
  b.writeUInt32BE(location, 32)
  b.writeInt32BE(Math.round(lat * 10000), 36)
  b.writeInt32BE(Math.round(lon * 10000), 40)
  b.writeUInt32BE(area, 44)
  return b
}

t.test('reads the records of a database written by hand', async (t) => {
  const dir = database()
  t.teardown(() => rmSync(dir, { recursive: true }))
  const geo = createGeoipLookup({ dataDir: dir, defaultRadiusKm: 300 })
  t.same(geo.lookup('1.0.0.7'), { lat: 51.5, lon: -0.1, radiusKm: 50, country: 'GB' })
  t.same(geo.lookup('2.0.0.255'), { lat: -33.9, lon: 151.2, radiusKm: 300, country: 'AU' }, 'no radius: the default')
  t.equal(geo.lookup('3.0.0.1'), undefined, 'a range without a location')
  t.equal(geo.lookup('4.0.0.1'), undefined, 'a location without a country')
  for (const ip of ['0.255.255.255', '1.0.1.0', '5.0.0.0', '2a00:0:1::', '29ff:ffff:ffff:ffff::']) t.equal(geo.lookup(ip), undefined, ip)
  t.match(geo.lookup('2a00::1'), { country: 'GB', radiusKm: 100, lat: 48.9 })
  t.match(geo.lookup('2A00:0:0:FFFF:FFFF::'), { country: 'GB' }, 'the first 64 bits decide')
  t.match(geo.lookup('::ffff:1.0.0.7'), { country: 'GB' })
  t.match(geo.lookup('::ffff:100:7'), { country: 'GB' }, 'IPv4-mapped IPv6 in hex')
})

const PROC_FD = '/proc/self/fd'

t.test('one set of open files per data directory, however many lookups use it', { skip: !existsSync(PROC_FD) && `no ${PROC_FD}` }, async (t) => {
  const dir = database()
  t.teardown(() => rmSync(dir, { recursive: true }))
  const open = () => readdirSync(PROC_FD).length
  const before = open()
  for (let i = 0; i < 50; i++) createGeoipLookup({ dataDir: dir }).warm()
  t.equal(open() - before, 2, 'the two range files')
})

t.test('warm() fails, naming the file, when the database is missing or malformed', async (t) => {
  const location9 = v4Range(0x01000000, 0x010000ff, 9, 0, 0, 0)
  const cases: [string, Parameters<typeof database>[0] | 'missing', RegExp][] = [
    ['no data directory', 'missing', /geoip-city-names\.dat is unusable: ENOENT/],
    ['names cut short', { names: Buffer.alloc(100) }, /geoip-city-names\.dat is unusable: its 100 bytes are not whole 88-byte records/],
    ['IPv4 ranges cut short', { v4: location9.subarray(0, 20) }, /geoip-city\.dat is unusable: its 20 bytes are not whole 24-byte records/],
    ['no IPv6 ranges', { v6: Buffer.alloc(0) }, /geoip-city6\.dat is unusable: its 0 bytes are not whole 48-byte records/],
    ['an unknown location', { v4: location9 }, /geoip-city\.dat is unusable: record 0 names location 9, and there are 3/],
    ['a range ending before it starts', { v6: v6Range(2n << 60n, 1n << 60n, 0, 0, 0, 0) }, /geoip-city6\.dat is unusable: record 0 ends before it starts/],
  ]
  for (const [name, parts, message] of cases) {
    const dir = parts === 'missing' ? join(tmpdir(), 'no-such-geoip-data') : database(parts)
    if (parts !== 'missing') t.teardown(() => rmSync(dir, { recursive: true }))
    const geo = createGeoipLookup({ dataDir: dir })
    t.throws(() => geo.warm(), message, name)
  }
})
