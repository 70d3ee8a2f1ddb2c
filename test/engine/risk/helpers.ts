import type { GeoFix, GeoLookup } from '../../../src/engine/risk/geo.js'
import { decisionFacts } from '../../../src/engine/pdp.js'
import type { RiskOutcome } from '../../../src/engine/ports.js'
import { readDevice } from '../../../src/engine/risk/device-trust.js'
import { createRiskEngine } from '../../../src/engine/risk/risk-engine.js'
import { DEFAULT_RISK_POLICY, type RiskPolicy } from '../../../src/engine/policy/files/risk.js'
import type { RequestContext } from '../../../src/engine/types.js'
import { MemoryStateStore } from '../../../src/store/memory-store.js'

export const T0 = Date.parse('2026-03-01T12:00:00Z')
export const MINUTE = 60_000
export const HOUR = 3_600_000

/** A geolocation table for tests: exact places, known radii. */
export function fakeGeo(table: Record<string, GeoFix>): GeoLookup {
  return { lookup: (ip) => table[ip] }
}

export const PLACES: Record<string, GeoFix> = {
  '198.51.1.1': { lat: 51.5074, lon: -0.1278, radiusKm: 20, country: 'GB' }, // London
  '198.51.1.2': { lat: 48.8566, lon: 2.3522, radiusKm: 20, country: 'FR' }, // Paris, 344 km away
  '198.51.1.3': { lat: -33.8688, lon: 151.2093, radiusKm: 20, country: 'AU' }, // Sydney
  '198.51.1.4': { lat: 52.2053, lon: 0.1218, radiusKm: 60, country: 'GB' }, // Cambridge, 80 km from London
  '198.51.1.5': { lat: 39.0392, lon: 125.7625, radiusKm: 50, country: 'KP' }, // Pyongyang
}

export function trusted(now: number): RequestContext {
  return {
    device: { id: 'laptop', managed: true, encrypted: true, osUpToDate: true },
    session: { authTime: Math.floor(now / 1000) - 60, amr: ['pwd'] },
  }
}

/** The risk engine on a memory store with a hand-moved clock: one call = one decision's prepare, exec, assess and follow-up. */
export function riskHarness(policy: RiskPolicy = DEFAULT_RISK_POLICY, geo: GeoLookup = fakeGeo(PLACES)) {
  let now = T0
  const store = new MemoryStateStore({ now: () => now })
  const engine = createRiskEngine(policy, geo)
  return {
    store,
    policy,
    get now() {
      return now
    },
    set now(value: number) {
      now = value
    },
    async assess(context: RequestContext, about: { subjectId?: string; tenant?: string; resourceType?: string; action?: string } = {}): Promise<RiskOutcome> {
      const batch = store.batch()
      const request = {
        subject: { id: about.subjectId ?? 'alice', tenant: about.tenant ?? 'acme' },
        action: about.action ?? 'read',
        resource: { type: about.resourceType ?? 'documents' },
        context,
      }
      const facts = decisionFacts(request, undefined, 'default', now)
      const prepared = engine.prepare({ facts, device: readDevice(facts.subjectId, facts.device, policy, batch) }, batch)
      await batch.exec()
      const outcome = prepared.assess()
      if (outcome.followUp) {
        const later = store.batch()
        outcome.followUp(later)
        await later.exec()
      }
      return outcome
    },
  }
}

export function signal(outcome: RiskOutcome, name: string) {
  return outcome.assessment.signals.find((s) => s.name === name)
}
