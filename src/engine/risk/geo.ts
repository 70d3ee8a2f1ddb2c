import { createRequire } from 'node:module'
import { LRUCache } from 'lru-cache'
import { classifyIp, normaliseIp } from '../ip-address.js'

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

interface GeoipLite {
  lookup(ip: string): { ll: [number | null, number | null]; country: string; area?: number } | null
}

/**
 * geoip-lite's bundled database. It holds about 150 MB in memory, so it is loaded on the first
 * lookup rather than at import (a process that never sees an IP never pays for it), or by warm():
 * the server warms it before it listens, so that no decision waits for the load.
 */
export function createGeoipLookup(options: { defaultRadiusKm?: number; cacheSize?: number } = {}): GeoLookup & { warm(): void } {
  let db: GeoipLite | undefined
  const load = () => (db ??= createRequire(import.meta.url)('geoip-lite') as GeoipLite)
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
        if (hit && hit.ll[0] !== null && hit.ll[1] !== null && hit.country) {
          fix = { lat: hit.ll[0], lon: hit.ll[1], radiusKm: hit.area && hit.area > 0 ? hit.area : fallbackRadius, country: hit.country }
        }
      }
      cache.set(ip, { fix })
      return fix
    },
  }
}
