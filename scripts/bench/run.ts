/**
 * HTTP benchmark of the PDP against a bare Fastify route (npm run bench; `npm run bench -- --help`).
 *
 * Each server runs in its own child process (scripts/bench/servers.ts) and reports its CPU time over IPC;
 * this process only generates load, with autocannon, in alternating rounds (bare, pdp, bare, pdp, ...) so
 * that both see the same machine conditions. Per scenario it prints requests/s, p50/p99 latency, server
 * CPU per request, errors and non-2xx answers, the PDP/bare throughput ratio and the verdict mix.
 */
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { DEFAULT_TOKEN_CACHE_SIZE } from '../../src/identity/token-verifier.js'
import { EXAMPLE_POLICY_DIR, generatePolicy, writePolicyDir } from './generate-policy.js'
import { ROOT } from './paths.js'
import type { ParentMessage, ServerMessage } from './servers.js'
import { exampleWorkload, generatedWorkload, tokenWorkload, type Workload } from './workload.js'

// npm run bench compiles the scripts with the PDP (tsconfig.bench.json), so that no loader runs in the servers.
const SERVER_SCRIPT = join(import.meta.dirname, 'servers.js')

const USAGE = `npm run bench -- [options]

  --quick                 smoke run: 1 round of 2 s per server and scenario, 1 s warm-up
  --rounds N              measured rounds per server and scenario (3; env BENCH_ROUNDS)
  --duration S            seconds per round (10; env BENCH_DURATION)
  --warmup S              unmeasured seconds per server before a scenario's rounds (3; env BENCH_WARMUP)
  --connections N         concurrent connections (32)
  --scenarios LIST        which of a,b,c,d,e to run (all; env BENCH_SCENARIOS)
  --subjects N            subjects of the example-policy workload (2000)
  --tokens N              distinct JWTs of scenario d (1000)
  --policy-lines N        policy lines of scenario e (50000)
  --policy-subjects N     subjects of scenario e (5000)
  --policy-roles N        roles of scenario e (500)
  --max-latency-ms MS     skip a scenario's load when one sequential decision takes longer (1000)
  --timeout S             autocannon's per-request time-out (10)
  --redis-url URL         Redis of scenario c (redis://127.0.0.1:6379/14)
`

interface Settings {
  rounds: number
  duration: number
  warmup: number
  connections: number
  scenarios: string[]
  subjects: number
  tokens: number
  policyLines: number
  policySubjects: number
  policyRoles: number
  maxLatencyMs: number
  timeout: number
  redisUrl: string
}

function positive(name: string, value: string): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${name} must be a positive number, got "${value}"`)
  return n
}

function parseSettings(argv: string[]): Settings | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean' },
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      scenarios: { type: 'string' },
      subjects: { type: 'string' },
      tokens: { type: 'string' },
      'policy-lines': { type: 'string' },
      'policy-subjects': { type: 'string' },
      'policy-roles': { type: 'string' },
      'max-latency-ms': { type: 'string' },
      timeout: { type: 'string' },
      'redis-url': { type: 'string' },
    },
  })
  if (values.help) return undefined
  const env = process.env
  const quick = values.quick === true
  const number = (name: string, flag: string | undefined, envValue: string | undefined, normal: number, quickValue = normal) =>
    positive(name, flag ?? envValue ?? String(quick ? quickValue : normal))
  const scenarios = (values.scenarios ?? env.BENCH_SCENARIOS ?? 'a,b,c,d,e').split(',').map((s) => s.trim().toLowerCase())
  for (const s of scenarios) if (!SCENARIOS.some((known) => known.key === s)) throw new RangeError(`unknown scenario "${s}" (a, b, c, d, e)`)
  return {
    rounds: Math.round(number('--rounds', values.rounds, env.BENCH_ROUNDS, 3, 1)),
    duration: number('--duration', values.duration, env.BENCH_DURATION, 10, 2),
    warmup: number('--warmup', values.warmup, env.BENCH_WARMUP, 3, 1),
    connections: Math.round(number('--connections', values.connections, undefined, 32)),
    scenarios,
    subjects: Math.round(number('--subjects', values.subjects, undefined, 2000)),
    tokens: Math.round(number('--tokens', values.tokens, undefined, 1000)),
    policyLines: Math.round(number('--policy-lines', values['policy-lines'], undefined, 50_000)),
    policySubjects: Math.round(number('--policy-subjects', values['policy-subjects'], undefined, 5000)),
    policyRoles: Math.round(number('--policy-roles', values['policy-roles'], undefined, 500)),
    maxLatencyMs: number('--max-latency-ms', values['max-latency-ms'], undefined, 1000),
    timeout: number('--timeout', values.timeout, undefined, 10),
    redisUrl: values['redis-url'] ?? 'redis://127.0.0.1:6379/14',
  }
}

/** A server child process: started, asked for its CPU time and RSS, stopped. */
class ServerProcess {
  private waiting: ((usage: { cpuMicros: number; rss: number }) => void)[] = []

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    /** Lines the server logged (at LOG_LEVEL=warn: warnings and errors), and the first of them. */
    readonly log: { lines: number; first: string | undefined },
  ) {
    child.on('message', (message: ServerMessage) => {
      if (message.type === 'usage') this.waiting.shift()?.(message)
    })
  }

  static start(mode: 'bare' | 'pdp', args: string[], env: Record<string, string>): Promise<ServerProcess> {
    // The parent's PDP_* and REDIS_URL settings must not leak into a scenario's configuration.
    const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PDP_') && key !== 'REDIS_URL'))
    const child = fork(SERVER_SCRIPT, [mode, ...args], {
      cwd: ROOT,
      // BENCH_PROFILE_DIR: CPU profiles of the PDP servers, for finding where a scenario's time goes.
      execArgv: mode === 'pdp' && process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [],
      env: { ...base, PDP_DECISION_LOG: 'off', LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    })
    const log = { lines: 0, first: undefined as string | undefined }
    // Warnings under load (a slow store, say) come by the thousand: count them rather than flood the report.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      log.lines++
      log.first ??= line
    })
    return new Promise((resolvePromise, reject) => {
      const onExit = (code: number | null) => reject(new Error(`${mode} server exited (code ${code}) before listening`))
      child.once('exit', onExit)
      child.on('message', function first(message: ServerMessage) {
        if (message.type === 'failed') reject(new Error(`${mode} server failed to start: ${message.message}`))
        if (message.type !== 'listening') return
        child.off('message', first)
        child.off('exit', onExit)
        resolvePromise(new ServerProcess(child, message.port, log))
      })
    })
  }

  usage(): Promise<{ cpuMicros: number; rss: number }> {
    return new Promise((resolvePromise) => {
      this.waiting.push(resolvePromise)
      this.child.send({ type: 'usage' } satisfies ParentMessage)
    })
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise((done) => this.child.once('exit', done))
    this.child.disconnect()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}

/** What one server did over a scenario's measured rounds. */
class Tally {
  responses = 0
  seconds = 0
  cpuMicros = 0
  errors = 0
  non2xx = 0
  latencies: number[] = []
  verdicts = new Map<string, number>()

  count(verdict: string): void {
    this.verdicts.set(verdict, (this.verdicts.get(verdict) ?? 0) + 1)
  }
}

/** Cycles through a workload's bodies; every connection takes the next one. */
class BodyCycle {
  private next = 0
  /** Set once the warm-up is over. */
  measured = false
  constructor(
    readonly workload: Workload,
    private readonly onPick?: (index: number, measured: boolean) => void,
  ) {}
  take(): string {
    const index = this.next
    this.next = (this.next + 1) % this.workload.bodies.length
    this.onPick?.(index, this.measured)
    return this.workload.bodies[index]!
  }
}

const VERDICT = /^\{"decision":"([a-z_]+)"/
const FIRST_REASON = /"reasons":\["([a-z_]+)"/

async function load(settings: Settings, port: number, bodies: BodyCycle, seconds: number, tally?: Tally): Promise<void> {
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: settings.connections,
    duration: seconds,
    timeout: settings.timeout,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        method: 'POST',
        path: '/decide',
        setupRequest: (request) => {
          request.body = bodies.take()
          return request
        },
        onResponse: (status, body) => {
          if (!tally) return
          const verdict = status === 200 ? VERDICT.exec(body)?.[1] : undefined
          if (verdict === undefined) return tally.count(`HTTP ${status}`)
          // A refusal is counted with its deciding reason; the bare route's constant allow has none worth showing.
          tally.count(verdict === 'allow' ? verdict : `${verdict} (${FIRST_REASON.exec(body)?.[1] ?? '?'})`)
        },
      },
    ],
  })
  if (tally) instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => tally.latencies.push(ms))
  const result = await instance
  if (!tally) return
  tally.errors += result.errors
  tally.non2xx += result.non2xx
}

/** One measured round: the server's CPU time before and after, the responses counted in between. */
async function round(settings: Settings, server: ServerProcess, bodies: BodyCycle, tally: Tally): Promise<number> {
  const before = await server.usage()
  const responsesBefore = tally.responses
  const latenciesBefore = tally.latencies.length
  const started = performance.now()
  await load(settings, server.port, bodies, settings.duration, tally)
  const seconds = (performance.now() - started) / 1000
  // Let requests already on the wire finish before reading the CPU clock.
  await new Promise((done) => setTimeout(done, 100))
  const after = await server.usage()
  const served = tally.latencies.length - latenciesBefore
  tally.responses = responsesBefore + served
  tally.seconds += seconds
  tally.cpuMicros += after.cpuMicros - before.cpuMicros
  return served / seconds
}

/** Times a few decisions one at a time; the first one over the limit stops the probe. */
async function probe(port: number, bodies: Workload, limitMs: number): Promise<{ ms: number[]; tooSlow: boolean }> {
  const ms: number[] = []
  for (const body of bodies.bodies.slice(0, 3)) {
    const started = performance.now()
    const response = await fetch(`http://127.0.0.1:${port}/decide`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    await response.arrayBuffer()
    ms.push(performance.now() - started)
    if (ms[ms.length - 1]! > limitMs) return { ms, tooSlow: true }
  }
  return { ms, tooSlow: false }
}

interface Prepared {
  env: Record<string, string>
  args: string[]
  workload: Workload
  /** Told which body each request takes, and whether it is in a measured round (scenario d simulates the verifier cache with it). */
  onPick?: (index: number, measured: boolean) => void
  /** Lines printed under the table, once the server stopped and the scenario cleaned up. */
  notes(server: { rss: number }): string[]
  cleanup(): Promise<void>
}

interface Scenario {
  key: string
  title: string
  prepare(settings: Settings, nowMs: number): Promise<Prepared | { skip: string }>
}

const nothing = async () => {}
const noNotes = () => [] as string[]

const SCENARIOS: Scenario[] = [
  {
    key: 'a',
    title: 'policy only',
    async prepare(settings, nowMs) {
      return { env: { PDP_POLICY_DIR: EXAMPLE_POLICY_DIR }, args: ['--policy-only'], workload: exampleWorkload(settings.subjects, { nowMs }), notes: noNotes, cleanup: nothing }
    },
  },
  {
    key: 'b',
    title: 'policy + risk, embedded store',
    async prepare(settings, nowMs) {
      return { env: { PDP_POLICY_DIR: EXAMPLE_POLICY_DIR }, args: [], workload: exampleWorkload(settings.subjects, { nowMs }), notes: noNotes, cleanup: nothing }
    },
  },
  {
    key: 'c',
    title: 'policy + risk, Redis store',
    async prepare(settings, nowMs) {
      const prefix = `pdp-bench:${process.pid}:${randomBytes(4).toString('hex')}:`
      const redis = new Redis(settings.redisUrl, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1, retryStrategy: () => null })
      try {
        await redis.connect()
        await redis.ping()
      } catch (err) {
        redis.disconnect()
        return { skip: `Redis at ${settings.redisUrl} is not reachable (${(err as Error).message})` }
      }
      let deleted = 0
      return {
        env: { PDP_POLICY_DIR: EXAMPLE_POLICY_DIR, REDIS_URL: settings.redisUrl, PDP_REDIS_PREFIX: prefix },
        args: [],
        workload: exampleWorkload(settings.subjects, { nowMs }),
        notes: () => [`${settings.redisUrl}, key prefix "${prefix}", ${deleted} keys deleted afterwards`],
        async cleanup() {
          for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 }) as AsyncIterable<string[]>) {
            if (keys.length > 0) deleted += await redis.del(...keys)
          }
          redis.disconnect()
        },
      }
    },
  },
  {
    key: 'd',
    title: 'policy + risk, embedded, JWT',
    async prepare(settings, nowMs) {
      // Tokens must outlive the scenario: its rounds, warm-ups and a margin.
      const scenarioSeconds = 2 * (settings.warmup + settings.rounds * settings.duration) + 600
      const lifetime = Math.min(86_400, Math.max(900, Math.ceil(scenarioSeconds)))
      const workload = await tokenWorkload(settings.subjects, settings.tokens, lifetime, { nowMs })
      // The verifier caches verified tokens in an LRU keyed by token; replaying the same sequence on an
      // LRU of the same size shows which requests skipped the signature check.
      const cache = new LRUCache<number, true>({ max: DEFAULT_TOKEN_CACHE_SIZE })
      const seen = { warmup: { hits: 0, misses: 0 }, measured: { hits: 0, misses: 0 } }
      return {
        env: workload.env,
        args: [],
        workload,
        onPick: (index, measured) => {
          const token = workload.tokenOf![index]!
          const counts = measured ? seen.measured : seen.warmup
          if (cache.get(token)) counts.hits++
          else {
            counts.misses++
            cache.set(token, true)
          }
        },
        notes: () => {
          const { hits, misses } = seen.measured
          return [
            `${settings.tokens} distinct tokens cycled in order; the verifier cache holds ${DEFAULT_TOKEN_CACHE_SIZE} (LRU): ` +
              `warm-up: ${seen.warmup.misses} signature checks, ${seen.warmup.hits} cache hits; ` +
              `measured rounds: ${misses} signature checks, ${hits} cache hits (${percent(hits, hits + misses)} hits)`,
          ]
        },
        cleanup: workload.cleanup,
      }
    },
  },
  {
    key: 'e',
    title: 'large policy, embedded store',
    async prepare(settings, nowMs) {
      const dir = await mkdtemp(join(tmpdir(), 'pdp-bench-policy-'))
      const policy = generatePolicy({ lines: settings.policyLines, subjects: settings.policySubjects, roles: settings.policyRoles })
      await writePolicyDir(dir, policy)
      const { counts } = policy
      return {
        env: { PDP_POLICY_DIR: dir },
        args: [],
        workload: generatedWorkload(policy, { nowMs }),
        notes: (server) => [
          `generated policy: ${counts.lines} lines (${counts.pLines} p, ${counts.gLines} g), ${counts.roles} roles, ${counts.subjects} subjects, ${counts.resourceTypes} resource types`,
          `server RSS after the run: ${mb(server.rss)}`,
        ],
        cleanup: () => rm(dir, { recursive: true, force: true }),
      }
    },
  },
]

const percent = (part: number, whole: number) => (whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`)
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

interface Row {
  scenario: string
  server: 'bare' | 'pdp'
  tally: Tally
  ratio?: number
  skipped?: string
}

function formatRows(rows: Row[]): string {
  const header = ['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors', 'non-2xx', 'PDP/bare']
  const lines = rows.map((row) => {
    const t = row.tally
    if (row.skipped) return [row.scenario, row.server, 'skipped', '', '', '', '', '', '']
    const sorted = Float64Array.from(t.latencies).sort()
    return [
      row.scenario,
      row.server,
      (t.responses / t.seconds).toFixed(0),
      percentile(sorted, 50).toFixed(2),
      percentile(sorted, 99).toFixed(2),
      t.responses === 0 ? '-' : (t.cpuMicros / t.responses).toFixed(0),
      String(t.errors),
      String(t.non2xx),
      row.ratio === undefined ? '' : row.ratio.toFixed(2),
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const format = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [format(header), format(widths.map((w) => '-'.repeat(w))), ...lines.map(format)].join('\n')
}

function verdictMix(tally: Tally): string {
  const total = [...tally.verdicts.values()].reduce((a, b) => a + b, 0)
  return [...tally.verdicts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([verdict, n]) => `${verdict} ${percent(n, total)}`)
    .join(', ')
}

function say(line: string): void {
  process.stdout.write(`${line}\n`)
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2))
  if (!settings) {
    process.stdout.write(USAGE)
    return
  }
  const cpuList = cpus()
  say('zt-pdp HTTP benchmark')
  say(`machine: ${cpuList[0]?.model.trim() ?? 'unknown CPU'}, ${cpuList.length} cores, ${(totalmem() / 1024 ** 3).toFixed(1)} GB RAM, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
  say(
    `load: autocannon in this process, ${settings.connections} connections, ${settings.rounds} round(s) of ${settings.duration} s per server and scenario, ` +
      `alternating bare/pdp after ${settings.warmup} s of warm-up each`,
  )
  say('servers: each in its own child process (compiled JavaScript, no loader, as npm start runs the PDP), PDP_DECISION_LOG=off, LOG_LEVEL=warn; CPU per request = the child\'s user+system time / responses')
  say('')

  const bare = await ServerProcess.start('bare', [], {})
  const rows: Row[] = []
  const notes: string[] = []
  const mixes: string[] = []
  try {
    for (const scenario of SCENARIOS.filter((s) => settings.scenarios.includes(s.key))) {
      const name = `(${scenario.key}) ${scenario.title}`
      const prepared = await scenario.prepare(settings, Date.now())
      if ('skip' in prepared) {
        say(`${name}: skipped: ${prepared.skip}`)
        rows.push({ scenario: name, server: 'pdp', tally: new Tally(), skipped: prepared.skip })
        continue
      }
      let pdp: ServerProcess | undefined
      let rss = 0
      try {
        const startedAt = performance.now()
        pdp = await ServerProcess.start('pdp', prepared.args, prepared.env)
        say(`${name}: pdp listening after ${((performance.now() - startedAt) / 1000).toFixed(1)} s; ${prepared.workload.description}`)
        const bareTally = new Tally()
        const pdpTally = new Tally()
        const { ms, tooSlow } = await probe(pdp.port, prepared.workload, settings.maxLatencyMs)
        if (tooSlow) {
          const reason = `one decision took ${(ms[ms.length - 1]! / 1000).toFixed(1)} s at rest (over --max-latency-ms ${settings.maxLatencyMs}); not load-tested`
          say(`${name}: ${reason}`)
          rows.push({ scenario: name, server: 'pdp', tally: pdpTally, skipped: reason })
          notes.push(`${name}: ${reason}`)
        } else {
          const bareBodies = new BodyCycle(prepared.workload)
          const pdpBodies = new BodyCycle(prepared.workload, prepared.onPick)
          await load(settings, bare.port, bareBodies, settings.warmup)
          await load(settings, pdp.port, pdpBodies, settings.warmup)
          pdpBodies.measured = true
          for (let r = 1; r <= settings.rounds; r++) {
            const bareRate = await round(settings, bare, bareBodies, bareTally)
            const pdpRate = await round(settings, pdp, pdpBodies, pdpTally)
            say(`${name}: round ${r}/${settings.rounds}: bare ${bareRate.toFixed(0)} req/s, pdp ${pdpRate.toFixed(0)} req/s`)
          }
          const ratio = pdpTally.responses / pdpTally.seconds / (bareTally.responses / bareTally.seconds)
          rows.push({ scenario: name, server: 'bare', tally: bareTally }, { scenario: '', server: 'pdp', tally: pdpTally, ratio })
          mixes.push(`${name}: ${verdictMix(pdpTally)}`)
        }
        rss = (await pdp.usage()).rss
        if (pdp.log.lines > 0) notes.push(`${name}: the server logged ${pdp.log.lines} warning/error lines; the first: ${pdp.log.first}`)
      } finally {
        await pdp?.stop()
        await prepared.cleanup()
      }
      for (const line of prepared.notes({ rss })) notes.push(`${name}: ${line}`)
    }
  } finally {
    await bare.stop()
  }

  say('')
  say(formatRows(rows))
  say('')
  say('verdicts of the PDP (share of its responses):')
  for (const line of mixes) say(`  ${line}`)
  if (notes.length > 0) {
    say('')
    say('notes:')
    for (const line of notes) say(`  ${line}`)
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
