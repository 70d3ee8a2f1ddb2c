/**
 * Micro-benchmark of one policy decision: the indexed evaluator against node-casbin's enforcer on generated
 * policies of 100, 10,000 and 50,000 lines in the bundled example's shape (roles with inheritance, tenants,
 * resource types, actions, some conditions and deny rules). Run with `npm run bench:evaluate`.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createCasbinEvaluator } from '../src/engine/policy/casbin-evaluator.js'
import type { PolicyEvaluator, PolicyQuery } from '../src/engine/policy/evaluator.js'
import { createIndexedEvaluator } from '../src/engine/policy/indexed-evaluator.js'
import { parseModelFile, parsePolicyFile } from '../src/engine/policy/policy-files.js'

const SIZES = [100, 10_000, 50_000]
const INDEXED_ITERATIONS = 50_000
/** Casbin scans every line per decision, so it gets a time budget rather than a fixed count. */
const CASBIN_BUDGET_MS = 3_000
const CASBIN_MAX_ITERATIONS = 5_000

const ACTIONS = ['read', 'create', 'update', 'delete', 'export']
const CONDITIONS = [
  'true',
  'true',
  'r.obj.attributes.owner == r.sub.id',
  'r.obj.attributes.team != null && r.obj.attributes.team == r.sub.attributes.team',
  'r.sub.attributes.level >= 3',
]

/** A deterministic generator, so that every run measures the same policy and requests. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

interface Generated {
  policy: string
  queries: PolicyQuery[]
}

function generate(lines: number, seed = 42): Generated {
  const next = random(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!
  const pLines = Math.round(lines * 0.9)
  const roleCount = Math.max(4, Math.round(pLines / 40))
  const types = Array.from({ length: Math.max(4, Math.round(Math.sqrt(pLines) / 2)) }, (_, i) => `type${i}`)
  const tenants = Array.from({ length: Math.max(2, Math.round(lines / 1000)) }, (_, i) => `tenant${i}`)
  const roles = Array.from({ length: roleCount }, (_, i) => `role${i}`)

  const out: string[] = []
  for (let i = 0; i < pLines; i++) {
    const tenant = next() < 0.5 ? '*' : pick(tenants)
    const action = next() < 0.05 ? '*' : pick(ACTIONS)
    const effect = next() < 0.05 ? 'deny' : 'allow'
    out.push(`p, ${roles[i % roleCount]}, ${tenant}, ${pick(types)}, ${action}, ${pick(CONDITIONS)}, ${effect}`)
  }
  // Inheritance in chains of four (role4k+1 has role4k, ...), in every tenant.
  for (let i = 0; i < roleCount; i++) if (i % 4 !== 0) out.push(`g, role${i}, role${i - 1}, *`)
  const users: { id: string; tenant: string }[] = []
  for (let i = 0; out.length < lines; i++) {
    const user = { id: `user${i}`, tenant: pick(tenants) }
    users.push(user)
    out.push(`g, ${user.id}, ${pick(roles)}, ${user.tenant}`)
  }

  const queries: PolicyQuery[] = Array.from({ length: 2_000 }, () => {
    const user = pick(users)
    return {
      subject: { id: user.id, roles: next() < 0.2 ? [pick(roles)] : [], tenant: user.tenant, attributes: { team: pick(['a', 'b']), level: Math.floor(next() * 5) } },
      domain: user.tenant,
      resource: { type: pick(types), id: 'r1', attributes: { owner: next() < 0.5 ? user.id : 'someone', team: pick(['a', 'b']) } },
      action: pick(ACTIONS),
      env: { time: 1772366400, hour: 12, weekday: 0, ip: '10.0.0.1' },
    }
  })
  return { policy: out.join('\n'), queries }
}

interface Timing {
  median: number
  p99: number
  iterations: number
}

function measure(evaluator: PolicyEvaluator, queries: readonly PolicyQuery[], iterations: number, budgetMs = Infinity): Timing {
  const warmUntil = performance.now() + budgetMs / 10
  for (let i = 0; i < Math.min(iterations, 1_000) && performance.now() < warmUntil; i++) evaluator.evaluate(queries[i % queries.length]!, false)
  const samples: number[] = []
  const deadline = performance.now() + budgetMs
  for (let i = 0; i < iterations; i++) {
    const query = queries[i % queries.length]!
    const start = process.hrtime.bigint()
    evaluator.evaluate(query, false)
    samples.push(Number(process.hrtime.bigint() - start) / 1_000)
    if (i >= 2 && performance.now() > deadline) break
  }
  samples.sort((a, b) => a - b)
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!
  return { median: at(0.5), p99: at(0.99), iterations: samples.length }
}

const modelText = await readFile(join(import.meta.dirname, '../policies/model.conf'), 'utf8')
const rows: { size: number; indexed: Timing; casbin: Timing }[] = []
for (const size of SIZES) {
  const { policy, queries } = generate(size)
  const model = parseModelFile(modelText)
  const lines = parsePolicyFile(policy, model)
  const indexed = createIndexedEvaluator(model, lines)
  if (!indexed) throw new Error('the indexed evaluator refused the generated policy')
  const casbin = await createCasbinEvaluator(model, lines)
  // A sanity check that both answer the same, within a time budget (Casbin is slow on big policies).
  const checkUntil = performance.now() + CASBIN_BUDGET_MS
  for (const [i, query] of queries.entries()) {
    if (i >= 3 && performance.now() > checkUntil) break
    const [a, b] = [indexed.evaluate(query, false), casbin.evaluate(query, false)]
    if (a.effect !== b.effect) throw new Error(`the evaluators disagree on ${JSON.stringify(query)}`)
  }
  const iterations = size <= 100 ? INDEXED_ITERATIONS : CASBIN_MAX_ITERATIONS
  rows.push({ size, indexed: measure(indexed, queries, INDEXED_ITERATIONS), casbin: measure(casbin, queries, iterations, CASBIN_BUDGET_MS) })
}

const fmt = (n: number) => n.toFixed(n < 10 ? 2 : n < 1000 ? 1 : 0).padStart(10)
console.log('µs per decision (median / p99), node', process.version)
console.log(`${'lines'.padStart(7)} ${'indexed p50'.padStart(12)} ${'indexed p99'.padStart(12)} ${'casbin p50'.padStart(12)} ${'casbin p99'.padStart(12)} ${'casbin runs'.padStart(12)} ${'casbin/indexed'.padStart(15)}`)
for (const r of rows) {
  console.log(
    `${String(r.size).padStart(7)} ${fmt(r.indexed.median).padStart(12)} ${fmt(r.indexed.p99).padStart(12)} ${fmt(r.casbin.median).padStart(12)} ${fmt(r.casbin.p99).padStart(12)} ${String(r.casbin.iterations).padStart(12)} ${(r.casbin.median / r.indexed.median).toFixed(0).padStart(14)}×`,
  )
}
const first = rows[0]!
const last = rows[rows.length - 1]!
console.log(`indexed median at ${last.size} lines / at ${first.size} lines: ${(last.indexed.median / first.indexed.median).toFixed(2)}×`)
