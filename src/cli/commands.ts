import { Command, CommanderError } from 'commander'
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { assemblePdp } from '../compose.js'
import { ConfigError, VARIABLES } from '../config/config.js'
import { toPolicyQuery, type DecisionInput, type PlanInput } from '../engine/pdp.js'
import { describeFilter } from '../engine/plan/filter.js'
import type { Plan } from '../engine/plan/settle.js'
import { loadPolicyBundle, type PolicyBundle } from '../engine/policy/bundle.js'
import { PolicyFileError } from '../engine/policy/policy-files.js'
import { createGeoipLookup, type GeoLookup } from '../engine/risk/geo.js'
import { GeoipDataError } from '../engine/risk/geoip-data.js'
import type { Decision, DecisionRequest, Verdict } from '../engine/types.js'
import { PACKAGE_VERSION } from '../package-info.js'
import { MemoryStateStore } from '../store/memory-store.js'
import { loadPolicySuites, runPolicySuites } from './policy-tests.js'

export interface CliIo {
  out: (line: string) => void
  err: (line: string) => void
}

/** Thrown by a command to end with this exit code after its output. */
class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`)
  }
}

/** Loads something from a policy directory; a file problem is one line naming the file, then exit 1. */
async function loadOrExit<T>(dir: string, io: CliIo, load: (dir: string) => Promise<T>): Promise<T> {
  try {
    return await load(dir)
  } catch (err) {
    io.err(err instanceof PolicyFileError ? `${dir}/${err.message}` : `${dir}: ${(err as Error).message}`)
    throw new Exit(1)
  }
}

/**
 * Geolocation as the server reads it: from GEODATADIR when set (checked as the server checks it, so that a test or an
 * explanation never runs on other data than production's), else the data in the geoip-lite package.
 */
function geoOf(env: NodeJS.ProcessEnv, io: CliIo): GeoLookup {
  const raw = env.GEODATADIR
  if (raw === undefined || raw === '') return createGeoipLookup()
  try {
    const geo = createGeoipLookup({ dataDir: VARIABLES.geoipDataDir.parse(raw, VARIABLES.geoipDataDir.name) })
    geo.warm()
    return geo
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof GeoipDataError)) throw err
    io.err(`pdp: ${err.message}`)
    throw new Exit(1)
  }
}

async function validate(dir: string, io: CliIo): Promise<void> {
  const bundle = await loadOrExit(dir, io, loadPolicyBundle)
  const suites = await loadOrExit(dir, io, loadPolicySuites)
  const cases = suites.reduce((n, s) => n + s.cases.length, 0)
  const { engine, fallbackCode, fallbackReason } = bundle.evaluator
  io.out(
    `${dir}: valid (policy version ${bundle.version}, ${bundle.evaluator.ruleCount} policy lines, evaluator ${engine}, ` +
      `${bundle.routes.size} routes, ${bundle.response.rules.length} response rules, ${suites.length} test suites with ${cases} cases)`,
  )
  // Valid, but on the slower path: say why, so the operator can decide whether to reshape the model.
  if (fallbackReason !== undefined) io.out(`${dir}: evaluated by node-casbin, not the indexed evaluator (${fallbackCode}): ${fallbackReason}`)
}

async function test(dir: string, io: CliIo, env: NodeJS.ProcessEnv): Promise<void> {
  const bundle = await loadOrExit(dir, io, loadPolicyBundle)
  const suites = await loadOrExit(dir, io, loadPolicySuites)
  if (suites.length === 0) {
    io.err(`${dir}/tests: no test suites (*.yaml) to run`)
    throw new Exit(1)
  }
  const results = await runPolicySuites(bundle, suites, { geo: geoOf(env, io) })
  let failed = 0
  for (const r of results) {
    const where = `${dir}/${r.file}${r.line === undefined ? '' : `:${r.line}`}`
    if (r.ok) io.out(`ok    ${where}  ${r.name}`)
    else {
      failed++
      io.out(`FAIL  ${where}  ${r.name}`)
      for (const p of r.problems) io.out(`        ${p}`)
    }
  }
  io.out(`${results.length - failed} passed, ${failed} failed (${suites.length} suites, policy version ${bundle.version})`)
  if (failed > 0) throw new Exit(1)
}

function describe(decision: Decision, io: CliIo): void {
  io.out(`decision: ${decision.decision} (${decision.reasons.join(', ')})`)
  if (decision.subject) io.out(`subject: ${decision.subject.id}${decision.subject.tenant ? ` (tenant ${decision.subject.tenant})` : ''}`)
  io.out(`policy version: ${decision.policyVersion}`)
  const e = decision.explanation
  if (e) {
    io.out(`effective roles: ${e.effectiveRoles.length > 0 ? e.effectiveRoles.join(', ') : '(none)'} in domain ${e.domain}`)
    io.out(e.matchedRules.length > 0 ? 'matched rules:' : 'matched rules: none')
    for (const m of e.matchedRules) io.out(`  ${(m.source ?? '').padEnd(18)} ${[m.ptype, ...m.rule].join(', ')}`)
  }
  const risk = decision.risk
  if (risk) {
    io.out(`risk: score ${risk.score} (${risk.level}), sensitivity ${risk.sensitivity} ×${risk.multiplier}`)
    for (const s of risk.signals) {
      const points = s.contribution > 0 ? `+${s.contribution}` : String(s.contribution)
      io.out(`  ${s.name.padEnd(16)} ${points.padStart(4)}  ${(s.reason ?? '').padEnd(20)} ${JSON.stringify(s.value)}${s.detail ? `  (${s.detail})` : ''}`)
    }
  }
  const step = decision.stepUp
  if (step) io.out(`step-up: level ${step.level}, methods ${step.methods.join(', ')}, max age ${step.maxAge} s, acr_values ${step.acrValues.join(' ')}`)
}

/** A request file (a POST /decide or /plan body) with subject, action and resource, or exit 1 saying what is wrong. */
async function readRequest<T extends { subject?: unknown; action: string; resource: unknown }>(file: string, route: string, io: CliIo): Promise<T> {
  let input: T
  try {
    input = JSON.parse(await readFile(file, 'utf8')) as T
  } catch (err) {
    io.err(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${(err as Error).message})`}`)
    throw new Exit(1)
  }
  if (input === null || typeof input !== 'object' || !input.subject || typeof input.action !== 'string' || !input.resource) {
    io.err(`${file}: needs subject, action and resource (the body of ${route}; tokens are not verified here)`)
    throw new Exit(1)
  }
  return input
}

function timeOf(option: string | undefined, io: CliIo): number {
  const at = option === undefined ? Date.now() : Date.parse(option)
  if (Number.isNaN(at)) {
    io.err(`--at: "${option}" is not an ISO 8601 time`)
    throw new Exit(1)
  }
  return at
}

async function explain(file: string, options: { policies: string; at?: string; json?: boolean }, io: CliIo, env: NodeJS.ProcessEnv): Promise<void> {
  const input = await readRequest<DecisionInput>(file, 'POST /decide', io)
  const bundle = await loadOrExit(options.policies, io, loadPolicyBundle)
  const at = timeOf(options.at, io)
  const store = new MemoryStateStore({ now: () => at })
  const pdp = assemblePdp({ policy: { current: bundle }, now: () => at, defaultTenant: 'default', store, geo: geoOf(env, io) })
  const { token: _ignored, ...request } = input
  const decision = await pdp.decide({ ...request, explain: true }, { source: 'cli' })
  await store.close()
  if (options.json) io.out(JSON.stringify(decision, null, 2))
  else describe(decision, io)
}

function describePlan(plan: Plan, io: CliIo): void {
  io.out(`plan: ${plan.plan} (${plan.reasons.join(', ')})`)
  io.out(`policy version: ${plan.policyVersion}`)
  if (plan.filter) io.out(`filter: ${describeFilter(plan.filter)}`)
  if (plan.unsupported) io.out(`not expressible as a filter${plan.unsupported.rule ? `: ${plan.unsupported.rule}` : ''}: ${plan.unsupported.reason}`)
  const step = plan.stepUp
  if (step) io.out(`step-up first: level ${step.level}, methods ${step.methods.join(', ')}, max age ${step.maxAge} s`)
}

async function plan(file: string, options: { policies: string; at?: string; json?: boolean }, io: CliIo, env: NodeJS.ProcessEnv): Promise<void> {
  const input = await readRequest<PlanInput>(file, 'POST /plan', io)
  if (typeof input.resource.type !== 'string') {
    io.err(`${file}: resource.type must be a string (a plan is about every resource of one type)`)
    throw new Exit(1)
  }
  const bundle = await loadOrExit(options.policies, io, loadPolicyBundle)
  const at = timeOf(options.at, io)
  const store = new MemoryStateStore({ now: () => at })
  const pdp = assemblePdp({ policy: { current: bundle }, now: () => at, defaultTenant: 'default', store, geo: geoOf(env, io) })
  const { token: _ignored, ...request } = input
  const answer = await pdp.plan({ ...request, resource: { type: request.resource.type } })
  await store.close()
  if (options.json) io.out(JSON.stringify(answer, null, 2))
  else describePlan(answer, io)
}

const POLICY_DENIALS = new Set(['policy_deny', 'no_matching_policy', 'policy_error'])

/** The part of a logged decision the policy decided: allow when it let the request through to risk. */
function loggedPolicyVerdict(reasons: readonly string[]): 'allow' | 'deny' | undefined {
  if (reasons.includes('policy_allow') || reasons.includes('jit_grant')) return 'allow'
  if (reasons.some((r) => POLICY_DENIALS.has(r))) return 'deny'
  return undefined
}

async function replay(logFile: string, options: { policies: string; failOnChange?: boolean }, io: CliIo): Promise<void> {
  const bundle = await loadOrExit(options.policies, io, loadPolicyBundle)
  const lines = createInterface({ input: createReadStream(logFile), crlfDelay: Infinity })
  const counts = { decisions: 0, same: 0, changed: 0, skipped: 0, unreadable: 0 }
  const opened = new Promise<void>((resolve, reject) => {
    lines.once('close', resolve)
    ;(lines as unknown as { input: NodeJS.ReadableStream }).input.once('error', reject)
  })
  const changes: string[] = []
  const handle = (text: string, n: number) => {
    if (text.trim() === '') return
    let line: Record<string, unknown>
    try {
      line = JSON.parse(text) as Record<string, unknown>
    } catch {
      counts.unreadable++
      return
    }
    // A plan's line answers for a resource type, not one resource: there is no single verdict to replay.
    if (line.type !== 'decision' || line.source === 'plan') return
    counts.decisions++
    const input = line.input as DecisionRequest | undefined
    const reasons = (line.reasons as string[] | undefined) ?? []
    const before = loggedPolicyVerdict(reasons)
    if (!input?.subject || before === undefined || typeof line.time !== 'string') {
      // Decided before the policy was asked (a bad token, a lockout, a store failure): nothing to compare.
      counts.skipped++
      return
    }
    const result = bundle.evaluator.evaluate(toPolicyQuery(input, input.subject.tenant ?? 'default', Date.parse(line.time)), true)
    const after = result.effect === 'allow' ? 'allow' : 'deny'
    if (after === before) {
      counts.same++
      return
    }
    counts.changed++
    const verdict = line.verdict as Verdict
    const to = after === 'deny' ? `deny (${result.effect === 'none' ? 'no_matching_policy' : `policy_${result.effect}`})` : 'allow by policy, then risk as before'
    const rule = result.matched[0]?.source ? ` by ${result.matched[0].source}` : ''
    changes.push(
      `line ${n}: ${String(line.decision_id)} ${input.subject.id} ${input.action} ${input.resource.type}${input.resource.id ? `/${input.resource.id}` : ''}: ${verdict} → ${to}${rule}`,
    )
  }
  let n = 0
  lines.on('line', (text) => handle(text, ++n))
  try {
    await opened
  } catch (err) {
    io.err(`${logFile}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
    throw new Exit(1)
  }
  for (const c of changes) io.out(c)
  io.out(
    `${counts.decisions} decisions: ${counts.changed} would change, ${counts.same} unchanged, ${counts.skipped} decided before the policy ` +
      `(not comparable)${counts.unreadable > 0 ? `, ${counts.unreadable} unreadable lines` : ''} under ${options.policies} (version ${bundle.version})`,
  )
  if (options.failOnChange && counts.changed > 0) throw new Exit(1)
}

/** Runs the `pdp` command line; resolves to the exit code. `env` is read for GEODATADIR, as the server reads it. */
export async function runCli(argv: readonly string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const program = new Command('pdp')
    .description('Operate the policy decision point: validate and test policies, explain a decision, replay a decision log')
    .version(PACKAGE_VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })

  program
    .command('validate')
    .description('check every policy file (model, policy, routes, risk, identity, response, tests); errors name file and line')
    .argument('[dir]', 'policy directory', 'policies')
    .action((dir: string) => validate(dir, io))
  program
    .command('test')
    .description('run the policy test suites in <dir>/tests/*.yaml')
    .argument('[dir]', 'policy directory', 'policies')
    .action((dir: string) => test(dir, io, env))
  program
    .command('explain')
    .description('decide one request (a POST /decide body in a JSON file) and show rules, roles and the risk breakdown')
    .argument('<request>', 'JSON file')
    .option('-p, --policies <dir>', 'policy directory', 'policies')
    .option('--at <time>', 'decide as of this ISO 8601 time (default: now)')
    .option('--json', 'print the decision as JSON')
    .action((file: string, options: { policies: string; at?: string; json?: boolean }) => explain(file, options, io, env))
  program
    .command('plan')
    .description('which resources of a type may the subject act on (a POST /plan body in a JSON file): all, none, or a filter')
    .argument('<request>', 'JSON file')
    .option('-p, --policies <dir>', 'policy directory', 'policies')
    .option('--at <time>', 'plan as of this ISO 8601 time (default: now)')
    .option('--json', 'print the plan as JSON (the filter as the API returns it)')
    .action((file: string, options: { policies: string; at?: string; json?: boolean }) => plan(file, options, io, env))
  program
    .command('replay')
    .description('re-evaluate the decisions in a decision log under candidate policies and list every verdict that would change')
    .argument('<log>', 'decision log (JSON lines, as PDP_DECISION_LOG writes them)')
    .requiredOption('-p, --policies <dir>', 'candidate policy directory')
    .option('--fail-on-change', 'exit 1 when any verdict would change')
    .action((file: string, options: { policies: string; failOnChange?: boolean }) => replay(file, options, io))

  try {
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (err) {
    if (err instanceof Exit) return err.code
    if (err instanceof CommanderError) return err.exitCode
    io.err(`pdp: ${(err as Error).message}`)
    return 1
  }
}
