import t from 'tap'
import { deepStrictEqual } from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { newEnforcer, newModelFromString, StringAdapter, type Enforcer } from 'casbin'
import { domainMatches, requestFieldsOf } from '../../../src/engine/policy/casbin-evaluator.js'
import { createEvaluator } from '../../../src/engine/policy/evaluator-factory.js'
import type { PolicyEvaluator, PolicyQuery } from '../../../src/engine/policy/evaluator.js'
import { type Answer, oracleAnswer, pdpAnswer, random } from '../../helpers/casbin-oracle.js'
import { parseModelFile, parsePolicyFile, PolicyFileError } from '../../../src/engine/policy/policy-files.js'
import { parseRequestMapping } from '../../../src/engine/policy/files/request.js'
import type { RequestSource } from '../../../src/engine/policy/request-mapping.js'

/*
 * Every model node-casbin ships in its package examples, read from node_modules at run time (never copied here),
 * each with the policy file of the same name (X_model.conf with X_policy.csv, X_model_Y.conf with X_policy_Y.csv;
 * a model without one is loaded with an empty policy). Each either loads, on the indexed or the Casbin path, and
 * then answers every generated request as a plain Enforcer over the original files does; or is refused with the
 * file, line and reason of the PDP's validation. A model on the Casbin path shows the code of the reason the indexed
 * evaluator gave. The table below is asserted as a whole, so an example that stops
 * loading, or changes evaluator, fails this test.
 *
 * Each model is loaded as written, beside a request.yaml that declares nothing, so every request field receives
 * the value its name suggests (sub: subject.id, obj: resource.id, act: action, dom: domain); the oracle receives
 * the same strings. Both sides get the PDP's one convention, that a role link in domain "*" holds in every domain.
 */

const EXAMPLES = join(import.meta.dirname, '../../../node_modules/casbin/examples')

const EXPECTED: Record<string, string> = {
  'abac_model.conf (no policy file)': 'loaded-casbin (no_policy_lines)',
  'abac_not_using_policy_model.conf (no policy file)': 'loaded-casbin (no_policy_lines)',
  'abac_rule_model.conf + abac_rule_policy.csv': 'loaded-casbin (matcher_eval)',
  'basic_keyget2_model.conf + basic_keyget2_policy.csv': 'loaded-casbin (matcher_term)',
  'basic_model.conf + basic_policy.csv': 'loaded-indexed',
  'basic_with_root_model.conf (no policy file)': 'loaded-casbin (no_policy_lines)',
  'basic_without_resources_model.conf + basic_without_resources_policy.csv': 'loaded-indexed',
  'basic_without_users_model.conf + basic_without_users_policy.csv': 'loaded-indexed',
  'glob_model.conf + glob_policy.csv': 'loaded-indexed',
  'in_operator_model.conf (no policy file)': 'loaded-casbin (no_policy_lines)',
  'ipmatch_model.conf + ipmatch_policy.csv': 'loaded-indexed',
  'keymatch2_model.conf + keymatch2_policy.csv': 'loaded-indexed',
  'keymatch_custom_model.conf (no policy file)': 'refused: keymatch_custom_model.conf:11: matcher calls "keyMatchCustom", which is not one of Casbin\'s built-in functions',
  'keymatch_model.conf + keymatch_policy.csv': 'loaded-indexed',
  'multiple_policy_definitions_model.conf + multiple_policy_definitions_policy.csv': 'loaded-indexed',
  'priority_model.conf + priority_policy.csv': 'loaded-indexed',
  'priority_model_explicit.conf + priority_policy_explicit.csv': 'loaded-indexed',
  'rbac_g2_model.conf + rbac_g2_policy.csv': 'loaded-indexed',
  'rbac_model.conf + rbac_policy.csv': 'loaded-indexed',
  'rbac_with_all_pattern_model.conf + rbac_with_all_pattern_policy.csv': 'loaded-casbin (matcher_term)',
  'rbac_with_deny_model.conf + rbac_with_deny_policy.csv': 'loaded-indexed',
  'rbac_with_domain_pattern_model.conf + rbac_with_domain_pattern_policy.csv': 'loaded-indexed',
  'rbac_with_domains_model.conf + rbac_with_domains_policy.csv': 'loaded-indexed',
  'rbac_with_hierarchical_domains_model.conf + rbac_with_hierarchical_domains_policy.csv': 'loaded-indexed',
  'rbac_with_multiple_policy_model.conf + rbac_with_multiple_policy_policy.csv': 'refused: rbac_with_multiple_policy_model.conf:2: request field "r.thing" receives no request value: name one in request.yaml (for example "thing: resource.id")',
  'rbac_with_not_deny_model.conf (no policy file)': 'loaded-casbin (no_policy_lines)',
  'rbac_with_pattern_model.conf + rbac_with_pattern_policy.csv': 'loaded-indexed',
  'rbac_with_resource_roles_model.conf + rbac_with_resource_roles_policy.csv': 'loaded-indexed',
  'subject_priority_model.conf + subject_priority_policy.csv': 'loaded-indexed',
  'subject_priority_model_with_domain.conf + subject_priority_policy_with_domain.csv': 'loaded-indexed',
  'issues/node_casbin_150_model.conf + issues/node_casbin_150_policy.csv': 'loaded-indexed',
}

/** Requests per loaded example: a deterministic sample of every combination of the values below. */
const REQUESTS_PER_EXAMPLE = 2_000

/** Values beyond the policy's own that the examples' matchers treat specially (paths, addresses, patterns). */
const EXTRA: Record<string, string[]> = {
  sub: ['stranger', '192.168.2.3', '10.0.0.1', 'root', ''],
  obj: ['/alice_data/x', '/alice_data/hello', '/bob_data/y', '/foo/x/y', '/book/1', '/pen/2', 'data9', ''],
  act: ['GET', 'POST', 'DELETE', 'read', 'write'],
  dom: ['domain1', 'domain2', 'domain3', '*'],
}

/** A query in which each request value a field receives holds the string given for that field. */
function queryOf(sources: readonly RequestSource[], values: readonly string[]): PolicyQuery {
  const query: PolicyQuery = {
    subject: { id: '', roles: [], tenant: '', attributes: {} },
    domain: '',
    resource: { type: '', id: '', attributes: {} },
    action: '',
    env: { time: 0, hour: 0, weekday: 4, ip: '' },
  }
  sources.forEach((source, i) => {
    const value = values[i]!
    if (source.path === 'subject.id') query.subject.id = value
    else if (source.path === 'domain') query.domain = query.subject.tenant = value
    else if (source.path === 'resource.id') query.resource.id = value
    else if (source.path === 'action') query.action = value
    else throw new Error(`no string for ${source.path}`)
  })
  return query
}

async function modelFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.isDirectory()) out.push(...(await modelFiles(join(dir, entry.name))))
    else if (entry.name.endsWith('.conf')) out.push(join(dir, entry.name))
  }
  return out
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    return undefined
  }
}

t.test("node-casbin's package examples: each loads and answers as a plain Enforcer, or is refused with file, line and reason", async (t) => {
  const outcomes: Record<string, string> = {}
  let compared = 0
  let allowed = 0
  for (const modelPath of await modelFiles(EXAMPLES)) {
    const modelFile = relative(EXAMPLES, modelPath)
    const policyFile = modelFile.replace(/model(?=[^/]*$)/, 'policy').replace(/\.conf$/, '.csv')
    const modelSource = await readFile(modelPath, 'utf8')
    const policySource = await readOptional(join(EXAMPLES, policyFile))
    const name = policySource === undefined ? `${modelFile} (no policy file)` : `${modelFile} + ${policyFile}`
    let evaluator: PolicyEvaluator
    let model
    try {
      model = parseModelFile(modelSource, modelFile, parseRequestMapping('', 'request.yaml'))
      evaluator = await createEvaluator(model, parsePolicyFile(policySource ?? '', model, policyFile), policyFile)
    } catch (err) {
      // Only the PDP's own validation may refuse, never a raw error from inside Casbin.
      t.type(err, PolicyFileError, `${name}: refused by validation`)
      outcomes[name] = `refused: ${(err as Error).message}`
      continue
    }
    outcomes[name] = evaluator.engine === 'casbin' ? `loaded-casbin (${evaluator.fallbackCode})` : `loaded-${evaluator.engine}`

    const oracle = policySource === undefined ? await newEnforcer(newModelFromString(modelSource)) : await newEnforcer(newModelFromString(modelSource), new StringAdapter(policySource))
    for (const [ptype, assertion] of oracle.getModel().model.get('g') ?? []) {
      if (assertion.value.split(',').length >= 3) await oracle.addNamedDomainMatchingFunc(ptype, domainMatches)
    }
    await oracle.buildRoleLinks()

    const fields = model.requestTokens.get('r')!
    const seen = new Set((policySource ?? '').split(/[\n,]/).map((v) => v.trim()).filter((v) => v !== '' && !v.includes('(')))
    const candidates = fields.map((field) => [...new Set([...seen, ...(EXTRA[field] ?? [])])])
    // Half the requests start from a policy line, and from a user holding its subject, so that lines match often.
    const rows = (policySource ?? '').split('\n').map((l) => l.split(',').map((v) => v.trim()))
    const pRows = rows.filter((r) => r[0] === 'p')
    const gRows = rows.filter((r) => r[0] === 'g')
    const pTokens = model.policyTokens.get('p') ?? []
    const next = random(compared + 1)
    const counts = new Map<string, number>()
    for (let i = 0; i < REQUESTS_PER_EXAMPLE; i++) {
      const row = pRows.length > 0 && i % 2 === 0 ? pRows[next(pRows.length)]! : undefined
      const values = candidates.map((list, f) => {
        const at = pTokens.indexOf(fields[f]!)
        if (!row || at < 0 || next(5) === 0) return list[next(list.length)]!
        const value = row[at + 1]!
        const holders = gRows.filter((g) => g[2] === value)
        return fields[f] === 'sub' && holders.length > 0 && next(2) === 0 ? holders[next(holders.length)]![1]! : value
      })
      const query = queryOf(requestFieldsOf(model), values)
      const expected = oracleAnswer(oracle, values)
      deepStrictEqual(pdpAnswer(evaluator, query), expected, `${name}: ${values.join(', ')}`)
      counts.set(expected.effect, (counts.get(expected.effect) ?? 0) + 1)
      if (expected.effect === 'allow') allowed++
      compared++
    }
    t.pass(`${name}: ${evaluator.engine}, ${REQUESTS_PER_EXAMPLE} requests as the plain Enforcer (${[...counts].map(([e, n]) => `${e} ${n}`).join(', ')})`)
  }
  t.same(outcomes, EXPECTED, 'the examples load, or are refused, as recorded')
  t.ok(compared > 0, `${compared} requests compared`)
  t.ok(allowed >= compared / 10, `${allowed} of them allowed`)
})

t.test('the refused example loads once request.yaml names the value of its own request field', async (t) => {
  const modelSource = await readFile(join(EXAMPLES, 'rbac_with_multiple_policy_model.conf'), 'utf8')
  const policySource = await readFile(join(EXAMPLES, 'rbac_with_multiple_policy_policy.csv'), 'utf8')
  const model = parseModelFile(modelSource, 'model.conf', parseRequestMapping('thing: resource.id\n'))
  t.same(requestFieldsOf(model).map((s) => s.path), ['subject.id', 'resource.id', 'action'], 'user and action guessed, thing declared')
  const evaluator = await createEvaluator(model, parsePolicyFile(policySource, model))
  const oracle = await newEnforcer(newModelFromString(modelSource), new StringAdapter(policySource))
  const names = [...new Set(policySource.split(/[\n,]/).map((v) => v.trim()).filter(Boolean)), 'stranger']
  let allowed = 0
  for (const user of names) {
    for (const thing of names) {
      for (const action of names) {
        const expected = oracleAnswer(oracle, [user, thing, action])
        deepStrictEqual(pdpAnswer(evaluator, queryOf(requestFieldsOf(model), [user, thing, action])), expected, `${user} ${action} ${thing}`)
        if (expected.effect === 'allow') allowed++
      }
    }
  }
  t.ok(allowed > 0, `${evaluator.engine}: ${names.length ** 3} requests as the plain Enforcer, ${allowed} allowed`)
})
