import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadPolicyBundle } from '../../../src/engine/policy/bundle.js'
import { PolicyFileError, parseModelFile, parsePolicyFile } from '../../../src/engine/policy/policy-files.js'
import { EXAMPLE_POLICIES, policyCopy } from '../../helpers/build.js'

const model = await readFile(join(EXAMPLE_POLICIES, 'model.conf'), 'utf8')
const parsedModel = parseModelFile(model)

t.test('the bundled example loads', async (t) => {
  const bundle = await loadPolicyBundle(EXAMPLE_POLICIES)
  t.match(bundle.version, /^[0-9a-f]{16}$/)
  t.ok(bundle.evaluator.ruleCount > 10)
})

t.test('broken models are refused with file and line', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['unknown section', model.replace('[matchers]', '[matcher]'), /^model\.conf:\d+: unknown section \[matcher\]/],
    ['missing matcher', model.replace(/^m = .*$/m, ''), /^model\.conf: missing "m = \.\.\." in \[matchers\]/],
    ['key in the wrong section', model.replace('e = some', 'x = some'), /^model\.conf:\d+: key "x" does not belong in \[policy_effect\]/],
    ['unsupported effect', model.replace(/^e = .*$/m, 'e = every(where (p.eft == allow))'), /^model\.conf:\d+: unsupported policy effect/],
    ['matcher syntax error', model.replace(/^m = .*$/m, 'm = r.act == (p.act'), /^model\.conf:\d+: matcher does not parse/],
    ['matcher typo', model.replace('r.obj.type == p.obj', 'r.obj.type == p.object'), /^model\.conf:\d+: matcher refers to unknown name "p\.object"/],
    ['line without =', model.replace('[matchers]', '[matchers]\nnonsense'), /^model\.conf:\d+: expected "key = value"/],
  ]
  for (const [name, text, pattern] of cases) {
    t.throws(() => parseModelFile(text), PolicyFileError, name)
    t.throws(() => parseModelFile(text), { message: pattern }, name)
  }
  const line = model.split('\n').findIndex((l) => l.startsWith('m =')) + 1
  t.throws(() => parseModelFile(model.replace('r.obj.type == p.obj', 'r.obj.type == p.object')), { line, message: /matcher/ }, 'names the matcher line')
})

t.test('broken policy lines are refused with file and line', async (t) => {
  const cases: [string, string, number, RegExp][] = [
    ['unknown policy type', 'p, a, *, documents, read, true, allow\nq, a, b', 2, /unknown policy type "q"/],
    ['too few fields', '\n\np, a, *, documents, read, allow', 3, /"p" takes 6 values .* got 5/],
    ['too many role fields', 'g, a, b, c, d', 1, /"g" takes 3 values/],
    ['bad effect', 'p, a, *, documents, read, true, permit', 1, /effect must be "allow" or "deny", got "permit"/],
    ['condition syntax', 'p, a, *, documents, read, r.obj.attributes.owner ==, allow', 1, /condition .* does not parse/],
    ['condition typo', 'p, a, *, documents, read, r.subject.id == "x", allow', 1, /refers to unknown name "r\.subject"/],
    ['condition reads policy fields', 'p, a, *, documents, read, p.sub == "x", allow', 1, /unknown name "p\.sub"/],
    ['empty value', 'p, a, , documents, read, true, allow', 1, /empty value/],
    ['role cycle', 'g, a, b, *\ng, b, c, *\ng, c, a, *', 3, /role cycle: "a" inherits itself/],
    ['role cycle across a tenant and the wildcard', 'g, a, b, *\ng, b, a, acme', 2, /role cycle/],
  ]
  for (const [name, text, line, pattern] of cases) {
    t.throws(() => parsePolicyFile(text, parsedModel), { line, message: pattern }, name)
    t.throws(() => parsePolicyFile(text, parsedModel), { message: new RegExp(`^policy\\.csv:${line}: `) }, `${name}: prefix`)
  }
  t.same(parsePolicyFile('# only a comment\n\n', parsedModel), [], 'comments and blank lines are skipped')
  t.same(parsePolicyFile('g, a, b, acme\ng, a, b, globex', parsedModel).length, 2, 'the same link in two tenants is no cycle')
})

t.test('a directory without policy files is refused', async (t) => {
  const dir = await policyCopy(t)
  const { rm } = await import('node:fs/promises')
  await rm(join(dir, 'policy.csv'))
  await t.rejects(loadPolicyBundle(dir), { message: /^policy\.csv: missing from / })
  await t.rejects(loadPolicyBundle(join(dir, 'nope')), { message: /policy directory cannot be read/ })
})

t.test('the version changes with the content', async (t) => {
  const dir = await policyCopy(t)
  const before = await loadPolicyBundle(dir)
  const { appendFile } = await import('node:fs/promises')
  await appendFile(join(dir, 'policy.csv'), '\ng, erin, employee, acme\n')
  const after = await loadPolicyBundle(dir)
  t.not(after.version, before.version)
})
