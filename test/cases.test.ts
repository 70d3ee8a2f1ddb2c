import t from 'tap'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parse } from 'yaml'
import { loadPolicyBundle } from '../src/engine/policy/bundle.js'
import { createPdp } from '../src/engine/pdp.js'
import type { DecisionRequest } from '../src/engine/types.js'
import { ROOT, build } from './helpers/build.js'

/**
 * Decision cases as data: every YAML file under test/cases/decide runs twice,
 * against the engine directly and through POST /decide.
 */
interface Case {
  name: string
  now?: string
  input: DecisionRequest
  want: { decision: string; reasons?: string[]; explanation?: unknown }
}
interface CaseFile {
  description: string
  policy: string
  cases: Case[]
}

const DEFAULT_NOW = Date.parse('2026-03-01T12:00:00Z')
const dir = join(ROOT, 'test/cases/decide')
const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort()

for (const file of files) {
  const spec = parse(await readFile(join(dir, file), 'utf8')) as CaseFile
  const policyDir = join(ROOT, spec.policy)

  t.test(`${file}: ${spec.description}`, async (t) => {
    const bundle = await loadPolicyBundle(policyDir)
    t.test('engine', async (t) => {
      for (const c of spec.cases) {
        const at = c.now ? Date.parse(c.now) : DEFAULT_NOW
        const pdp = createPdp({ policy: { current: bundle }, now: () => at, defaultTenant: 'default' })
        const got = await pdp.decide(c.input)
        t.match(got, c.want, c.name)
        if (c.want.reasons) t.same(got.reasons, c.want.reasons, `${c.name}: exact reasons`)
        t.equal(got.policyVersion, bundle.version, `${c.name}: policy version`)
      }
    })
    t.test('POST /decide', async (t) => {
      for (const c of spec.cases) {
        const at = c.now ? Date.parse(c.now) : DEFAULT_NOW
        const app = await build(t, { env: { PDP_POLICY_DIR: policyDir }, now: () => at })
        const res = await app.inject({ method: 'POST', url: '/decide', payload: c.input })
        t.equal(res.statusCode, 200, `${c.name}: status`)
        const got = res.json()
        t.match(got, c.want, c.name)
        if (c.want.reasons) t.same(got.reasons, c.want.reasons, `${c.name}: exact reasons`)
        if (c.want.explanation) t.same(got.explanation, c.want.explanation, `${c.name}: exact explanation`)
        await app.close()
      }
    })
  })
}
