import { keyPart as part, keyTag as tag } from '../ports.js'

/**
 * Every store key the risk engine uses, in one place. Components are URI-encoded so that an id
 * containing ":" can never collide with another subject's or device's key; the subject is each key's
 * hash tag, so one subject's risk state shares a Redis Cluster slot with the rest of its state.
 */
export const riskKeys = {
  /** Hash: trust (event-adjusted, before posture), firstSeen, lastSeen, stepUpLevel, stepUpAt. */
  device: (subject: string, device: string) => `risk:dev:${tag(subject)}:${part(device)}`,
  /** String: JSON of the last located request { lat, lon, radiusKm, country, at }. */
  lastLocation: (subject: string) => `risk:loc:${tag(subject)}`,
  /** Set of countries the subject has been seen in. */
  countries: (subject: string) => `risk:ctry:${tag(subject)}`,
  /** Hash: total decisions, activeMinutes. */
  behaviour: (subject: string) => `risk:bh:${tag(subject)}`,
  /** Hash: hour of day (UTC) → decisions. */
  hours: (subject: string) => `risk:bh:${tag(subject)}:hours`,
  /** Set of resource types the subject has asked about. */
  resourceTypes: (subject: string) => `risk:bh:${tag(subject)}:types`,
  /** Counter of decisions in one minute. */
  minute: (subject: string, minute: number) => `risk:bh:${tag(subject)}:min:${minute}`,
}

export const DAY_MS = 86_400_000
