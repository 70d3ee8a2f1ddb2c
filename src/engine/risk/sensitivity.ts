import type { Sensitivity } from '../types.js'
import type { RiskPolicy } from '../policy/files/risk.js'

/** The request's own sensitivity, else the policy's default for the resource type and action, else the global default. */
export function sensitivityOf(requested: Sensitivity | undefined, resourceType: string, action: string, policy: RiskPolicy): Sensitivity {
  if (requested) return requested
  const byType = policy.sensitivity.resources.get(resourceType)
  return byType?.get(action) ?? byType?.get('default') ?? policy.sensitivity.default
}
