import t from 'tap'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { parse } from 'yaml'
import { assemblePdp } from '../src/compose.js'
import { loadPolicyBundle } from '../src/engine/policy/bundle.js'
import type { DecisionInput } from '../src/engine/pdp.js'
import { MemoryStateStore } from '../src/store/memory-store.js'
import { ROOT, build } from './helpers/build.js'

/**
 * Decision cases as data: every YAML file under test/cases/decide runs twice, against the engine
 * directly and through POST /decide, each case on fresh state. A case is one request or a sequence
 * of steps (for signals that compare with history, such as impossible travel).
 */
interface Want {
  decision: string
  reasons?: string[]
  explanation?: unknown
  risk?: unknown
  stepUp?: unknown
}
interface Step {
  now?: string
  input: DecisionInput
  want?: Want
}
interface Case extends Step {
  name: string
  steps?: Step[]
}
interface CaseFile {
  description: string
  policy: string
  defaults?: { context?: DecisionInput['context'] }
  cases: Case[]
}

const DEFAULT_NOW = '2026-03-01T12:00:00Z'
const dir = join(ROOT, 'test/cases/decide')
const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort()

function stepsOf(c: Case, defaults: CaseFile['defaults']): Step[] {
  const steps = c.steps ?? [{ ...(c.now ? { now: c.now } : {}), input: c.input, ...(c.want ? { want: c.want } : {}) }]
  return steps.map((s) => ({ ...s, input: s.input.context || !defaults?.context ? s.input : { ...s.input, context: defaults.context } }))
}

function check(t: { match: (a: unknown, b: unknown, m: string) => void; same: (a: unknown, b: unknown, m: string) => void }, got: Record<string, unknown>, want: Want, label: string): void {
  t.match(got, want, label)
  if (want.reasons) t.same(got.reasons, want.reasons, `${label}: exact reasons`)
  if (want.explanation) t.same(got.explanation, want.explanation, `${label}: exact explanation`)
}

for (const file of files) {
  const spec = parse(await readFile(join(dir, file), 'utf8')) as CaseFile
  const policyDir = join(ROOT, spec.policy)

  t.test(`${file}: ${spec.description}`, async (t) => {
    const bundle = await loadPolicyBundle(policyDir)
    t.test('engine', async (t) => {
      for (const c of spec.cases) {
        let now = Date.parse(DEFAULT_NOW)
        const store = new MemoryStateStore({ now: () => now })
        const pdp = assemblePdp({ policy: { current: bundle }, now: () => now, defaultTenant: 'default', store })
        for (const [i, step] of stepsOf(c, spec.defaults).entries()) {
          now = Date.parse(step.now ?? c.now ?? DEFAULT_NOW)
          const got = await pdp.decide(step.input)
          if (step.want) check(t, got as unknown as Record<string, unknown>, step.want, `${c.name} [${i}]`)
          t.equal(got.policyVersion, bundle.version, `${c.name} [${i}]: policy version`)
        }
      }
    })
    t.test('POST /decide', async (t) => {
      for (const c of spec.cases) {
        let now = Date.parse(DEFAULT_NOW)
        const app = await build(t, { env: { PDP_POLICY_DIR: policyDir }, now: () => now })
        for (const [i, step] of stepsOf(c, spec.defaults).entries()) {
          now = Date.parse(step.now ?? c.now ?? DEFAULT_NOW)
          const res = await app.inject({ method: 'POST', url: '/decide', payload: step.input })
          t.equal(res.statusCode, 200, `${c.name} [${i}]: status`)
          if (step.want) check(t, res.json(), step.want, `${c.name} [${i}]`)
        }
        await app.close()
      }
    })
  })
}
