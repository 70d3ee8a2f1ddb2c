import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { LRUCache } from 'lru-cache'
import { classifyIp, normaliseIp } from '../ip-address.js'
import { openGeoipData, type GeoipData } from './geoip-data.js'

/** Where an IP address is, as precisely as the database knows. */
export interface GeoFix {
  lat: number
  lon: number
  /** Accuracy radius, km. */
  radiusKm: number
  country: string
}

export interface GeoLookup {
  /** A location for a public, locatable address; undefined for anything else. */
  lookup(ip: string): GeoFix | undefined
}

const EARTH_RADIUS_KM = 6371.0088

/** Great-circle distance, km. */
export function haversineKm(a: Pick<GeoFix, 'lat' | 'lon'>, b: Pick<GeoFix, 'lat' | 'lon'>): number {
  const rad = Math.PI / 180
  const dLat = (b.lat - a.lat) * rad
  const dLon = (b.lon - a.lon) * rad
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)))
}

/** One reader per data directory and process: the files do not change while it runs, and apps are many. */
const readers = new Map<string, GeoipData>()

function geoipData(dir: string | undefined): GeoipData {
  const at = dir ?? join(dirname(createRequire(import.meta.url).resolve('geoip-lite/package.json')), 'data')
  let data = readers.get(at)
  if (!data) {
    data = openGeoipData(at)
    readers.set(at, data)
  }
  return data
}

/**
 * geoip-lite's bundled city database, read from its files on demand (see geoip-data.ts) rather than loaded. The
 * files are opened and checked on the first lookup, or by warm(): the server warms before it listens, so that a
 * missing or damaged database stops it there rather than failing decisions.
 */
export function createGeoipLookup(
  options: {
    defaultRadiusKm?: number
    cacheSize?: number
    /** geoip-lite's data directory; its package's own by default. */
    dataDir?: string
  } = {},
): GeoLookup & { warm(): void } {
  let db: GeoipData | undefined
  const load = () => (db ??= geoipData(options.dataDir))
  const fallbackRadius = options.defaultRadiusKm ?? 500
  const cache = new LRUCache<string, { fix: GeoFix | undefined }>({ max: options.cacheSize ?? 10_000 })
  return {
    warm() {
      load()
    },
    lookup(ip) {
      // Gateways send the same few thousand addresses over and over: remember the answers, misses included.
      const known = cache.get(ip)
      if (known) return known.fix
      let fix: GeoFix | undefined
      if (classifyIp(ip) === 'public') {
        const hit = load().lookup(normaliseIp(ip))
        if (hit?.country) {
          fix = { lat: hit.lat, lon: hit.lon, radiusKm: hit.area > 0 ? hit.area : fallbackRadius, country: hit.country }
        }
      }
      cache.set(ip, { fix })
      return fix
    },
  }
}
