import type { Enforcer } from 'casbin'
import { seededRandom } from '../../scripts/bench/generate-policy.js'
import type { PolicyEvaluator, PolicyQuery } from '../../src/engine/policy/evaluator.js'

/** One answer in a form both sides give: the effect and the rule reported as matched. */
export interface Answer {
  effect: string
  rule: string[]
}

/** A plain node-casbin Enforcer's answer to request values, the reference every PDP evaluator is held to. */
export function oracleAnswer(enforcer: Enforcer, values: unknown[]): Answer {
  try {
    const [allowed, rule] = enforcer.enforceExSync(...values)
    return { effect: allowed ? 'allow' : rule.length > 0 ? 'deny' : 'none', rule }
  } catch {
    return { effect: 'error', rule: [] }
  }
}

/** A PDP evaluator's answer to the same request. */
export function pdpAnswer(evaluator: PolicyEvaluator, query: PolicyQuery): Answer {
  const result = evaluator.evaluate(query, false)
  return { effect: result.effect, rule: result.effect === 'error' ? [] : [...(result.matched[0]?.rule ?? [])] }
}

/**
 * Integers below n from the bench's seeded PRNG (mulberry32), for the bulk of the requests: fast-check is too slow
 * for a million of them. seededRandom divides the 32-bit draw by 2^32, so multiplying back gives it exactly.
 */
export function random(seed: number): (n: number) => number {
  const next = seededRandom(seed)
  return (n) => (next() * 4294967296) % n
}
