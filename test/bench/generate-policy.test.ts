import t from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generatePolicy, writePolicyDir } from '../../scripts/bench/generate-policy.js'
import { loadPolicyBundle } from '../../src/engine/policy/bundle.js'
import type { PolicyQuery } from '../../src/engine/policy/evaluator.js'

const options = { lines: 400, subjects: 60, roles: 13, seed: 7 }

t.test('the generated policy has the asked-for size and is the same for the same seed', async (t) => {
  const policy = generatePolicy(options)
  t.same(policy.counts, { lines: 400, pLines: policy.counts.pLines, gLines: policy.counts.gLines, roles: 13, subjects: 60, resourceTypes: 250 })
  t.equal(policy.counts.pLines + policy.counts.gLines, 400)
  const csvLines = policy.csv.split('\n').filter((line) => line.startsWith('p,') || line.startsWith('g,'))
  t.equal(csvLines.length, 400)
  t.equal(new Set(policy.subjects.map((s) => s.id)).size, 60)
  t.equal(policy.permissions.size, 10, 'one entry per generated role (13 less the example\'s three)')
  t.equal(generatePolicy(options).csv, policy.csv)
  t.not(generatePolicy({ ...options, seed: 8 }).csv, policy.csv)
})

t.test('the written directory loads, and generated grants decide as generated', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pdp-bench-policy-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const policy = generatePolicy(options)
  await writePolicyDir(dir, policy)
  t.equal(await readFile(join(dir, 'policy.csv'), 'utf8'), policy.csv)
  const bundle = await loadPolicyBundle(dir)

  const subject = policy.subjects[0]!
  const allow = policy.permissions.get(subject.roles[0]!)!.find((p) => p.effect === 'allow' && p.condition === 'none' && p.tenant === '*')!
  const query = (resourceType: string, action: string, attributes: Record<string, unknown> = {}): PolicyQuery => ({
    subject: { id: subject.id, roles: [], tenant: subject.tenant, attributes: { team: subject.team } },
    domain: subject.tenant,
    resource: { type: resourceType, id: 'r1', attributes },
    action,
    env: { time: 0, hour: 12, weekday: 1, ip: '' },
  })
  t.equal(bundle.evaluator.evaluate(query(allow.resourceType, allow.action), false).effect, 'allow')
  t.equal(bundle.evaluator.evaluate(query('documents', 'read', { owner: subject.id }), false).effect, 'allow', 'generated roles inherit the example\'s employee rows')
  t.equal(bundle.evaluator.evaluate(query('nothing.here', 'read'), false).effect, 'none')
})

t.test('sizes that cannot be generated are refused', async (t) => {
  t.throws(() => generatePolicy({ roles: 3 }), RangeError)
  t.throws(() => generatePolicy({ lines: 100, subjects: 60, roles: 13 }), RangeError)
})
