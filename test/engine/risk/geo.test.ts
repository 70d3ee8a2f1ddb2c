import t from 'tap'
import { createGeoipLookup, haversineKm } from '../../../src/engine/risk/geo.js'
import { travel } from '../../../src/engine/risk/location.js'
import { PLACES } from './helpers.js'

t.test('geoip-lite places London and Sydney, and nothing for private addresses', async (t) => {
  const geo = createGeoipLookup()
  t.match(geo.lookup('81.2.69.142'), { country: 'GB', radiusKm: 100 })
  t.match(geo.lookup('103.86.96.100'), { country: 'AU', radiusKm: 20 })
  t.match(geo.lookup('::ffff:81.2.69.142'), { country: 'GB' }, 'IPv4-mapped IPv6')
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
