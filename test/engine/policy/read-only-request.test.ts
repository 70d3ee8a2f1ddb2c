import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createPdp } from '../../../src/engine/pdp.js'
import { loadPolicyBundle, type PolicyBundle } from '../../../src/engine/policy/bundle.js'
import { createCasbinEvaluator } from '../../../src/engine/policy/casbin-evaluator.js'
import type { PolicyEvaluator } from '../../../src/engine/policy/evaluator.js'
import { createIndexedEvaluator } from '../../../src/engine/policy/indexed-evaluator.js'
import { parseModelFile, type PolicyLine } from '../../../src/engine/policy/policy-files.js'
import { EXAMPLE_POLICIES, manualClock } from '../../helpers/build.js'

/*
 * Validation refuses every condition that could write (see the CLI tests). Should one ever reach an evaluator,
 * it still cannot change the request: here such lines are handed to the evaluators directly, past validation.
 */

const MODEL = await readFile(join(EXAMPLE_POLICIES, 'model.conf'), 'utf8')
const IMPURE: PolicyLine[] = [
  { ptype: 'p', values: ['user', '*', 'documents', 'read', 'r.sub.roles.push("admin") > 0', 'allow'], line: 1 },
  { ptype: 'p', values: ['user', '*', 'documents', 'update', 'r.sub.attributes.tags.push("x") > 0', 'allow'], line: 2 },
  { ptype: 'p', values: ['admin', '*', 'documents', 'delete', 'true', 'allow'], line: 3 },
]

const evaluators: Record<string, () => Promise<PolicyEvaluator>> = {
  indexed: async () => createIndexedEvaluator(parseModelFile(MODEL), IMPURE)!,
  casbin: () => createCasbinEvaluator(parseModelFile(MODEL), IMPURE),
}

for (const [engine, make] of Object.entries(evaluators)) {
  t.test(`${engine}: a condition that would write leaves the request as it was, for the next item and the shadow policy`, async (t) => {
    const example = await loadPolicyBundle(EXAMPLE_POLICIES)
    const active: PolicyBundle = { ...example, evaluator: await make() }
    const shadow: PolicyBundle = { ...example, version: 'shadow', evaluator: await make() }
    t.equal(active.evaluator.engine, engine)
    const clock = manualClock()
    const pdp = createPdp({ policy: { current: active }, shadow: { current: shadow }, now: clock.now, defaultTenant: 'default' })
    const roles = ['user']
    const attributes = { level: 1, tags: ['a'] }
    const decisions = await pdp.decideBatch({ subject: { id: 'mallory', roles, tenant: 'acme', attributes } }, [
      { action: 'read', resource: { type: 'documents' } },
      { action: 'update', resource: { type: 'documents' } },
      { action: 'delete', resource: { type: 'documents' } },
    ])
    t.match(decisions[0], { decision: 'deny', reasons: ['policy_error'] }, 'the push fails on the frozen copy')
    t.match(decisions[1], { decision: 'deny', reasons: ['policy_error'] }, 'so does a push into an attribute')
    t.match(decisions[2], { decision: 'deny', reasons: ['no_matching_policy'] }, 'the next item does not hold admin')
    t.same(roles, ['user'], "the caller's roles are unchanged")
    t.same(attributes, { level: 1, tags: ['a'] }, "the caller's attributes are unchanged")
  })
}
