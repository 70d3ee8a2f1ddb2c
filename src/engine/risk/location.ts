import type { ReasonCode, RiskSignal } from '../types.js'
import type { StoreBatch } from '../ports.js'
import { haversineKm, type GeoFix, type GeoLookup } from './geo.js'
import { classifyIp } from '../ip-address.js'
import { DAY_MS, riskKeys } from './keys.js'
import type { RiskPolicy } from '../policy/files/risk.js'

interface StoredFix extends GeoFix {
  /** Epoch ms. */
  at: number
}

export interface LocationObservation {
  /** 0-1: the highest of impossible travel, high-risk country, new country, unknown location. */
  risk: number
  /** Outside the subject's or tenant's allowed countries: a hard deny. */
  restricted: boolean
  /** Name of the signal that set `risk`; the location points are credited to it. */
  driver?: string
  /** When travel was impossible: the time (epoch ms) of the fix it was measured from. Only an authentication after it proves the user is here. */
  travelledSince?: number
  signals: RiskSignal[]
  reasons: ReasonCode[]
}

/** The stored JSON of each fix the lookup answers, up to the time's digits: the same few fixes are written again and again. */
const storedPrefixes = new WeakMap<GeoFix, GeoFix & { prefix: string }>()

/** `{"lat":…,"lon":…,"radiusKm":…,"country":"…","at":`, the text JSON.stringify gives a StoredFix before its time. */
function storedPrefix(fix: GeoFix): string {
  const known = storedPrefixes.get(fix)
  // Compared field by field, so that a lookup which changes the object it answered is not believed twice.
  if (known && known.lat === fix.lat && known.lon === fix.lon && known.radiusKm === fix.radiusKm && known.country === fix.country) return known.prefix
  const copy = { lat: fix.lat, lon: fix.lon, radiusKm: fix.radiusKm, country: fix.country }
  // Stringified with a one-digit time, which is then cut off with the closing brace.
  const prefix = JSON.stringify({ ...copy, at: 0 }).slice(0, -2)
  storedPrefixes.set(fix, { ...copy, prefix })
  return prefix
}

/** A time as JSON writes an integer; anything else (a fraction, an exponent, too many digits) is left to JSON.parse. */
const PLAIN_TIME = /^-?(?:0|[1-9][0-9]{0,14})$/

/**
 * The stored fix, or undefined when it is missing or malformed. A subject mostly asks from where it asked last: a
 * record that is `current`'s prefix and a plain time is that fix at that time, read without parsing the JSON again.
 */
function parseFix(raw: string | null, current?: { fix: GeoFix; prefix: string }): StoredFix | undefined {
  if (!raw) return undefined
  if (current && raw.length > current.prefix.length + 1 && raw.endsWith('}') && raw.startsWith(current.prefix)) {
    const time = raw.slice(current.prefix.length, -1)
    const { lat, lon, radiusKm, country } = current.fix
    if (PLAIN_TIME.test(time) && Number.isFinite(lat) && Number.isFinite(lon) && Number.isFinite(radiusKm)) return { lat, lon, radiusKm, country, at: Number(time) }
  }
  try {
    const fix = JSON.parse(raw) as StoredFix
    return [fix.lat, fix.lon, fix.radiusKm, fix.at].every((n) => typeof n === 'number' && Number.isFinite(n)) ? fix : undefined
  } catch {
    return undefined
  }
}

/**
 * Travel speed between the previous and this fix. Both fixes are only known within their accuracy
 * radii, so the distance that must have been covered is the gap between the two circles.
 */
export function travel(previous: StoredFix, current: GeoFix, now: number): { distanceKm: number; hours: number; speedKmh: number } {
  const distanceKm = Math.max(0, haversineKm(previous, current) - previous.radiusKm - current.radiusKm)
  // Two requests in the same instant still took some time; one second keeps the speed finite.
  const hours = Math.max(now - previous.at, 1000) / 3_600_000
  return { distanceKm, hours, speedKmh: distanceKm / hours }
}

/** Impossible travel, allowed and high-risk countries, first use of a country, unlocatable addresses. */
export function prepareLocation(
  subjectId: string,
  tenant: string,
  ip: string | undefined,
  now: number,
  policy: RiskPolicy,
  geo: GeoLookup,
  batch: StoreBatch,
): () => LocationObservation {
  const fix = ip === undefined ? undefined : geo.lookup(ip)
  const ttl = policy.device.retentionDays * DAY_MS
  const locKey = riskKeys.lastLocation(subjectId)
  // Only a located request moves the trail; an unlocatable one must not be able to erase it.
  const current = fix && { fix, prefix: storedPrefix(fix) }
  // The same text as JSON.stringify of { lat, lon, radiusKm, country, at: now }.
  const previousRaw = current ? batch.getSet(locKey, `${current.prefix}${JSON.stringify(now)}}`, ttl) : batch.get(locKey)
  const countriesKey = fix && riskKeys.countries(subjectId)
  const countriesBefore = countriesKey === undefined ? undefined : batch.sCard(countriesKey)
  const countryIsNew = countriesKey === undefined ? undefined : batch.sAdd(countriesKey, fix!.country, ttl)
  const loc = policy.location

  return () => {
    const signals: RiskSignal[] = []
    const reasons: ReasonCode[] = []
    const parts: { name: string; risk: number }[] = []
    let restricted = false
    let previous: StoredFix | undefined

    if (!fix) {
      const cls = ip === undefined ? 'absent' : classifyIp(ip)
      parts.push({ name: 'location', risk: loc.unknownLocationRisk })
      signals.push({ name: 'location', value: { country: null, address: cls }, contribution: 0, detail: 'no location for this address' })
    } else {
      const allowed = loc.allowedCountries.subjects.get(subjectId) ?? loc.allowedCountries.tenants.get(tenant)
      const signal: RiskSignal = { name: 'location', value: { country: fix.country, radiusKm: fix.radiusKm }, contribution: 0 }
      if (allowed && !allowed.includes(fix.country)) {
        restricted = true
        signal.reason = 'country_restricted'
        reasons.push('country_restricted')
      } else if (loc.highRiskCountries.includes(fix.country)) {
        signal.reason = 'high_risk_location'
        reasons.push('high_risk_location')
        parts.push({ name: 'location', risk: loc.highRiskCountryRisk })
      } else if (countryIsNew!.value && countriesBefore!.value > 0) {
        signal.reason = 'new_country'
        reasons.push('new_country')
        parts.push({ name: 'location', risk: loc.newCountryRisk })
      }
      signals.push(signal)

      previous = parseFix(previousRaw.value, current)
      if (previous) {
        const moved = travel(previous, fix, now)
        const impossible = moved.speedKmh > loc.maxSpeedKmh
        const value = {
          from: previous.country,
          to: fix.country,
          distanceKm: Math.round(moved.distanceKm),
          elapsedSeconds: Math.round(moved.hours * 3600),
          speedKmh: Math.round(moved.speedKmh),
          maxSpeedKmh: loc.maxSpeedKmh,
        }
        const travelSignal: RiskSignal = { name: 'impossibleTravel', value, contribution: 0 }
        if (impossible) {
          travelSignal.reason = 'impossible_travel'
          reasons.push('impossible_travel')
          parts.push({ name: 'impossibleTravel', risk: loc.impossibleTravelRisk })
        }
        signals.push(travelSignal)
      }
    }
    const impossibleFrom = reasons.includes('impossible_travel') ? previous?.at : undefined
    const top = parts.reduce<{ name: string; risk: number } | undefined>((best, p) => (!best || p.risk > best.risk ? p : best), undefined)
    const observation: LocationObservation = { risk: top?.risk ?? 0, restricted, signals, reasons }
    if (top) observation.driver = top.name
    if (impossibleFrom !== undefined) observation.travelledSince = impossibleFrom
    return observation
  }
}
