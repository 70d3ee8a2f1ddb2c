import { createCasbinEvaluator } from './casbin-evaluator.js'
import type { PolicyEvaluator } from './evaluator.js'
import { buildIndexedEvaluator } from './indexed-evaluator.js'
import type { ModelFile, PolicyLine } from './policy-files.js'

/**
 * The evaluator for a loaded policy: the indexed one when it can prove it answers exactly as Casbin does,
 * else node-casbin's enforcer, carrying the reason so that operators learn why their policy is on the slow path.
 */
export async function createEvaluator(model: ModelFile, lines: readonly PolicyLine[], file = 'policy.csv'): Promise<PolicyEvaluator> {
  const outcome = buildIndexedEvaluator(model, lines, file)
  if ('evaluator' in outcome) return outcome.evaluator
  const casbin = await createCasbinEvaluator(model, lines, file)
  return { ...casbin, fallbackCode: outcome.code, fallbackReason: outcome.reason }
}
