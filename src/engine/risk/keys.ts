import { keyPart as part } from '../ports.js'

/**
 * Every store key the risk engine uses, in one place. Components are URI-encoded so that an id
 * containing ":" can never collide with another subject's or device's key.
 */
export const riskKeys = {
  /** Hash: trust (event-adjusted, before posture), firstSeen, lastSeen, stepUpLevel, stepUpAt. */
  device: (subject: string, device: string) => `risk:dev:${part(subject)}:${part(device)}`,
  /** String: JSON of the last located request { lat, lon, radiusKm, country, at }. */
  lastLocation: (subject: string) => `risk:loc:${part(subject)}`,
  /** Set of countries the subject has been seen in. */
  countries: (subject: string) => `risk:ctry:${part(subject)}`,
  /** Hash: total decisions, activeMinutes. */
  behaviour: (subject: string) => `risk:bh:${part(subject)}`,
  /** Hash: hour of day (UTC) → decisions. */
  hours: (subject: string) => `risk:bh:${part(subject)}:hours`,
  /** Set of resource types the subject has asked about. */
  resourceTypes: (subject: string) => `risk:bh:${part(subject)}:types`,
  /** Counter of decisions in one minute. */
  minute: (subject: string, minute: number) => `risk:bh:${part(subject)}:min:${minute}`,
}

export const DAY_MS = 86_400_000
