import { createPdp, type Pdp, type PdpComponents } from './engine/pdp.js'
import type { PdpRisk } from './engine/ports.js'
import type { PolicyBundle } from './engine/policy/bundle.js'
import { createGeoipLookup, type GeoLookup } from './engine/risk/geo.js'
import { createRiskEngine } from './engine/risk/risk-engine.js'
import { stepUpFor } from './engine/risk/step-up.js'
import { identityGates } from './identity/index.js'
import { responseGate } from './response/gate.js'

export interface AssembleOptions extends Omit<PdpComponents, 'risk' | 'stepUpFor'> {
  /** IP geolocation; geoip-lite's database by default. */
  geo?: GeoLookup
}

/**
 * The PDP as the service, the CLI and the tests run it: policy, risk engine (one per policy
 * bundle, rebuilt after a reload), identity gates (revocation, sessions, grants), the response gate
 * (lockouts, freezes, blocked addresses), state store and
 * the step-ups for gates and store failures.
 */
export function assemblePdp(options: AssembleOptions): Pdp {
  const { geo: givenGeo, ...components } = options
  const geo = givenGeo ?? createGeoipLookup()
  const engines = new WeakMap<PolicyBundle, PdpRisk>()
  const risk = (bundle: PolicyBundle) => {
    let engine = engines.get(bundle)
    if (!engine) engines.set(bundle, (engine = createRiskEngine(bundle.risk, geo)))
    return engine
  }
  return createPdp({
    ...components,
    gates: components.gates ?? [...identityGates, responseGate],
    risk,
    stepUpFor: (bundle, level) => stepUpFor(level, bundle.risk, { deviceTrust: 100, locationRisk: 0 }),
  })
}
