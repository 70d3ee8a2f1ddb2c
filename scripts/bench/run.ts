/**
 * HTTP benchmark of the PDP against a bare Fastify route (npm run bench; `npm run bench -- --help`).
 *
 * Each server runs in its own process (scripts/bench/servers.ts, or Cerbos) and reports its CPU time; this
 * process only generates load, with autocannon, in alternating rounds (bare, pdp, bare, pdp, ...) so that both
 * see the same machine conditions. Per scenario it prints requests/s, p50/p99 latency and their ratio, the
 * server's event-loop delay under load, CPU per request, errors and non-2xx answers, the throughput ratio to the
 * bare route and the verdict mix. Then the HTTP path stage by stage (bench-only instrumented servers at one
 * connection), the calibration (scenario k: which ratio so many µs of added work per request yields) and issue 17's
 * targets, met or not.
 */
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import Fastify from 'fastify'
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { DEFAULT_TOKEN_CACHE_SIZE } from '../../src/identity/token-verifier.js'
import { checkBody } from '../../src/schemas/body-guard.js'
import { addedWorkAt, type Rung } from './calibration.js'
import { CerbosServer, cerbosVerdict, installCerbos, toCerbosCheck } from './cerbos.js'
import { EXAMPLE_POLICY_DIR, generatePolicy, writePolicyDir } from './generate-policy.js'
import { ROOT } from './paths.js'
import { STAGE_MARKS, type LoopDelay, type ParentMessage, type ServerMessage } from './protocol.js'
import { exampleWorkload, forwardAuthWorkload, generatedWorkload, tokenWorkload, type Workload } from './workload.js'

/**
 * The bench's callers authenticate as a gateway would, with a credential holding pdp:decide (the static admin
 * token, which holds every scope), and the PDP requires one (PDP_DECIDE_AUTH=token): only an authenticated
 * caller vouches for the subjects it names, so only then does the PDP learn their state (devices, locations,
 * sessions, behaviour). With PDP_DECIDE_AUTH=none no caller is authenticated on /decide and its decisions
 * change no state.
 */
const CALLER_TOKEN = randomBytes(24).toString('hex')

// npm run bench compiles the scripts with the PDP (tsconfig.bench.json), so that no loader runs in the servers.
const SERVER_SCRIPT = join(import.meta.dirname, 'servers.js')

const ALL_SCENARIOS = 'a,b,f,c,g,p,cerbos,d,e,k'

/** The calibration rungs (scenario k): the bare route plus this many µs of computation per request. */
const RUNGS_MICROS = [25, 50, 100]
const rungKey = (micros: number) => `k${micros}`
const isRung = (key: string) => RUNGS_MICROS.some((micros) => rungKey(micros) === key)

const USAGE = `npm run bench -- [options]

  --quick                 smoke run: 1 round of 2 s per server and scenario, 1 s warm-up, 2 s per stage run
  --rounds N              measured rounds per server and scenario (3; env BENCH_ROUNDS)
  --duration S            seconds per round (10; env BENCH_DURATION)
  --warmup S              unmeasured seconds per server before a scenario's rounds (3; env BENCH_WARMUP)
  --connections N         concurrent connections (32)
  --scenarios LIST        which of ${ALL_SCENARIOS} to run (all; env BENCH_SCENARIOS); k is the calibration:
                          the bare route plus ${RUNGS_MICROS.join(', ')} µs of computation per request (${rungKey(RUNGS_MICROS[0]!)} ... alone)
  --subjects N            distinct subjects of the example-policy workload (20000)
  --tokens N              distinct JWTs of scenarios d and g (1000)
  --policy-lines N        policy lines of scenario e (50000)
  --policy-subjects N     subjects of scenario e (5000)
  --policy-roles N        roles of scenario e (500)
  --max-latency-ms MS     skip a scenario's load when two sequential decisions in a row take longer (1000)
  --timeout S             autocannon's per-request time-out (10)
  --redis-url URL         Redis of scenario c (redis://127.0.0.1:6379/14)
  --stage-seconds S       seconds of each per-stage run (bare, a, b, f) at one connection; 0 skips them (8)
  --pdp-env KEY=VALUE     a PDP_* setting for every PDP server of the run, e.g. PDP_TURN_BUDGET_MS=0 (repeatable)
  --cerbos-cache DIR      where @cerbos/cerbos-linux-x64 is installed (npm install --no-save) for the cerbos scenario
                          (<tmpdir>/pdp-bench-cerbos; env BENCH_CERBOS_CACHE)
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
  stageSeconds: number
  cerbosCache: string
  /** PDP_* settings added to every PDP server's environment (--pdp-env). */
  pdpEnv: Record<string, string>
}

function positive(name: string, value: string, zeroAllowed = false): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !zeroAllowed)) throw new RangeError(`${name} must be a positive number, got "${value}"`)
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
      'stage-seconds': { type: 'string' },
      'cerbos-cache': { type: 'string' },
      'pdp-env': { type: 'string', multiple: true },
    },
  })
  if (values.help) return undefined
  const env = process.env
  const quick = values.quick === true
  const number = (name: string, flag: string | undefined, envValue: string | undefined, normal: number, quickValue = normal) =>
    positive(name, flag ?? envValue ?? String(quick ? quickValue : normal))
  const scenarios = (values.scenarios ?? env.BENCH_SCENARIOS ?? ALL_SCENARIOS).split(',').map((s) => s.trim().toLowerCase())
  for (const s of scenarios) if (!SCENARIOS.some((known) => known.key === s || known.group === s)) throw new RangeError(`unknown scenario "${s}" (${ALL_SCENARIOS}, or one rung: ${RUNGS_MICROS.map(rungKey).join(', ')})`)
  return {
    rounds: Math.round(number('--rounds', values.rounds, env.BENCH_ROUNDS, 3, 1)),
    duration: number('--duration', values.duration, env.BENCH_DURATION, 10, 2),
    warmup: number('--warmup', values.warmup, env.BENCH_WARMUP, 3, 1),
    connections: Math.round(number('--connections', values.connections, undefined, 32)),
    scenarios,
    subjects: Math.round(number('--subjects', values.subjects, undefined, 20_000)),
    tokens: Math.round(number('--tokens', values.tokens, undefined, 1000)),
    policyLines: Math.round(number('--policy-lines', values['policy-lines'], undefined, 50_000)),
    policySubjects: Math.round(number('--policy-subjects', values['policy-subjects'], undefined, 5000)),
    policyRoles: Math.round(number('--policy-roles', values['policy-roles'], undefined, 500)),
    maxLatencyMs: number('--max-latency-ms', values['max-latency-ms'], undefined, 1000),
    timeout: number('--timeout', values.timeout, undefined, 10),
    redisUrl: values['redis-url'] ?? 'redis://127.0.0.1:6379/14',
    stageSeconds: positive('--stage-seconds', values['stage-seconds'] ?? String(quick ? 2 : 8), true),
    cerbosCache: values['cerbos-cache'] ?? env.BENCH_CERBOS_CACHE ?? join(tmpdir(), 'pdp-bench-cerbos'),
    pdpEnv: Object.fromEntries(
      (values['pdp-env'] ?? []).map((pair) => {
        const match = /^(PDP_[A-Z0-9_]+)=(.*)$/.exec(pair)
        if (!match) throw new RangeError(`--pdp-env takes PDP_NAME=value, got "${pair}"`)
        return [match[1]!, match[2]!]
      }),
    ),
  }
}

interface Usage {
  cpuMicros: number
  rss: number
  /** Event-loop delay since the previous usage() (Node servers only). */
  loopDelay?: LoopDelay
}

/** What the load generator needs of a server under test. */
interface BenchServer {
  readonly port: number
  usage(): Promise<Usage>
  stop(): Promise<void>
}

/** A server child process (scripts/bench/servers.ts): started, asked for its CPU time, RSS and loop delay, stopped. */
class ServerProcess implements BenchServer {
  private waiting = new Map<ServerMessage['type'], ((message: ServerMessage) => void)[]>()

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    /** Lines the server logged (at LOG_LEVEL=warn: warnings and errors), and the first of them. */
    readonly log: { lines: number; first: string | undefined },
  ) {
    child.on('message', (message: ServerMessage) => this.waiting.get(message.type)?.shift()?.(message))
  }

  static start(mode: 'bare' | 'pdp', args: string[], env: Record<string, string>): Promise<ServerProcess> {
    // The parent's PDP_* and REDIS_URL settings must not leak into a scenario's configuration.
    const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('PDP_') && key !== 'REDIS_URL'))
    const child = fork(SERVER_SCRIPT, [mode, ...args], {
      cwd: ROOT,
      // BENCH_PROFILE_DIR: CPU profiles of the servers (bare/ and pdp/ under it), for finding where a scenario's time goes.
      execArgv: process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${join(process.env.BENCH_PROFILE_DIR, mode)}`] : [],
      env: { ...base, PDP_DECISION_LOG: 'off', LOG_LEVEL: 'warn', PDP_ADMIN_TOKEN: CALLER_TOKEN, PDP_DECIDE_AUTH: 'token', ...env },
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

  private ask<T extends ServerMessage['type']>(question: ParentMessage, answer: T): Promise<Extract<ServerMessage, { type: T }>> {
    return new Promise((resolvePromise) => {
      const queue = this.waiting.get(answer) ?? []
      queue.push(resolvePromise as (message: ServerMessage) => void)
      this.waiting.set(answer, queue)
      this.child.send(question)
    })
  }

  usage(): Promise<Usage> {
    return this.ask({ type: 'usage' }, 'usage')
  }

  /** Mean µs between the stage marks since the previous call (servers started with --stages). */
  stages(): Promise<Extract<ServerMessage, { type: 'stages' }>> {
    return this.ask({ type: 'stages' }, 'stages')
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
  /** The load generator's own CPU time (this process runs autocannon): it shares the cores with the server. */
  loadCpuMicros = 0
  errors = 0
  non2xx = 0
  latencies: number[] = []
  verdicts = new Map<string, number>()
  /** Event-loop delay p99 and max of each measured round, ms. */
  loopP99: number[] = []
  loopMax: number[] = []

  count(verdict: string): void {
    this.verdicts.set(verdict, (this.verdicts.get(verdict) ?? 0) + 1)
  }

  get rate(): number {
    return this.responses / this.seconds
  }
}

/** One request of a workload: a POST /decide body, or (forward-auth) a GET with headers. */
type Shot = { body: string } | { method: 'GET'; path: string; headers: Record<string, string> }

/** Cycles through a workload's requests; every connection takes the next one. */
class BodyCycle {
  private next = 0
  /** Set once the warm-up is over. */
  measured = false
  constructor(
    readonly workload: Workload,
    private readonly onPick?: (index: number, measured: boolean) => void,
  ) {}
  take(): Shot {
    const index = this.next
    this.next = (this.next + 1) % this.workload.bodies.length
    this.onPick?.(index, this.measured)
    return this.workload.requests?.[index] ?? { body: this.workload.bodies[index]! }
  }
}

const VERDICT = /^\{"decision":"([a-z_]+)"/
const FIRST_REASON = /"reasons":\["([a-z_]+)"/
const PLAN = /"plan":"([a-z_]+)"/

/** The verdict of a PDP (or bare) answer, a refusal with its deciding reason. */
function pdpVerdict(status: number, body: string): string {
  const verdict = VERDICT.exec(body)?.[1]
  if (verdict === undefined) return `HTTP ${status}`
  return verdict === 'allow' ? verdict : `${verdict} (${FIRST_REASON.exec(body)?.[1] ?? '?'})`
}

/** Where a load goes: the server, the path of its POST requests, and how its answers read. */
interface Target {
  port: number
  path: string
  verdict(status: number, body: string): string
}

async function load(settings: Settings, target: Target, bodies: BodyCycle, seconds: number, tally?: Tally, connections = settings.connections): Promise<void> {
  const instance = autocannon({
    url: `http://127.0.0.1:${target.port}`,
    connections,
    duration: seconds,
    timeout: settings.timeout,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${CALLER_TOKEN}` },
    requests: [
      {
        method: 'POST',
        path: target.path,
        setupRequest: (request) => {
          const shot = bodies.take()
          if ('body' in shot) {
            request.body = shot.body
            return request
          }
          return { ...request, method: shot.method, path: shot.path, headers: shot.headers, body: undefined }
        },
        onResponse: (status, body) => {
          if (tally) tally.count(target.verdict(status, body))
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

/** One measured round: the server's CPU time and loop delay before and after, the responses counted in between. */
async function round(settings: Settings, server: BenchServer, target: Target, bodies: BodyCycle, tally: Tally): Promise<number> {
  const before = await server.usage()
  const responsesBefore = tally.responses
  const latenciesBefore = tally.latencies.length
  const started = performance.now()
  const loadBefore = process.cpuUsage()
  await load(settings, target, bodies, settings.duration, tally)
  const loadUsed = process.cpuUsage(loadBefore)
  const seconds = (performance.now() - started) / 1000
  // Let requests already on the wire finish before reading the CPU clock.
  await new Promise((done) => setTimeout(done, 100))
  const after = await server.usage()
  const served = tally.latencies.length - latenciesBefore
  tally.responses = responsesBefore + served
  tally.seconds += seconds
  tally.cpuMicros += after.cpuMicros - before.cpuMicros
  tally.loadCpuMicros += loadUsed.user + loadUsed.system
  if (after.loopDelay) {
    tally.loopP99.push(after.loopDelay.p99)
    tally.loopMax.push(after.loopDelay.max)
  }
  return served / seconds
}

/** Times a few requests one at a time; the first one over the limit stops the probe. */
async function probe(target: Target, bodies: Workload, limitMs: number): Promise<{ ms: number[]; tooSlow: boolean }> {
  const ms: number[] = []
  for (let i = 0; i < Math.min(3, bodies.bodies.length); i++) {
    const shot = bodies.requests?.[i]
    const started = performance.now()
    const response = shot
      ? await fetch(`http://127.0.0.1:${target.port}${shot.path}`, { headers: shot.headers })
      : await fetch(`http://127.0.0.1:${target.port}${target.path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CALLER_TOKEN}` }, body: bodies.bodies[i]! })
    await response.arrayBuffer()
    ms.push(performance.now() - started)
    // The first request of a fresh process pays for compiling its code paths: only two slow in a row mean a slow server.
    if (ms.length >= 2 && ms[ms.length - 1]! > limitMs && ms[ms.length - 2]! > limitMs) return { ms, tooSlow: true }
  }
  return { ms, tooSlow: false }
}

interface Prepared {
  env: Record<string, string>
  args: string[]
  workload: Workload
  /** The bare route's bodies, when the scenario's server is asked in another shape (Cerbos, forward-auth). */
  bareWorkload?: Workload
  /** Another server than the PDP (Cerbos), with the path and answers of its API. */
  start?: () => Promise<BenchServer>
  path?: string
  verdict?: (status: number, body: string) => string
  /** Told which body each request takes, and whether it is in a measured round (scenario d simulates the verifier cache with it). */
  onPick?: (index: number, measured: boolean) => void
  /** Lines printed under the table, once the server stopped and the scenario cleaned up. */
  notes(server: { rss: number }): string[] | Promise<string[]>
  cleanup(): Promise<void>
}

interface Scenario {
  key: string
  /** A name for several scenarios at once in --scenarios (k: every calibration rung). */
  group?: string
  title: string
  /** The name of the server it measures in the table. */
  server?: string
  prepare(settings: Settings, nowMs: number): Promise<Prepared | { skip: string }>
}

const nothing = async () => {}
const noNotes = () => [] as string[]

/** A decision-log file in a fresh folder, and what the run wrote to it. */
async function decisionLogFile(): Promise<{ path: string; notes(): Promise<string[]>; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pdp-bench-log-'))
  const path = join(dir, 'decisions.log')
  let size = 0
  return {
    path,
    notes: async () => [`decision log: ${mb(size)} written to a file on ${tmpdir()}`],
    async cleanup() {
      size = await stat(path).then((s) => s.size, () => 0)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

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
    title: 'policy + risk, embedded store, log off',
    async prepare(settings, nowMs) {
      return { env: { PDP_POLICY_DIR: EXAMPLE_POLICY_DIR }, args: [], workload: exampleWorkload(settings.subjects, { nowMs }), notes: noNotes, cleanup: nothing }
    },
  },
  {
    key: 'f',
    title: '(b) with the decision log to a file',
    async prepare(settings, nowMs) {
      const log = await decisionLogFile()
      return {
        env: { PDP_POLICY_DIR: EXAMPLE_POLICY_DIR, PDP_DECISION_LOG: log.path },
        args: [],
        workload: exampleWorkload(settings.subjects, { nowMs }),
        notes: log.notes,
        cleanup: log.cleanup,
      }
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
    key: 'g',
    title: 'forward-auth, embedded store, JWT',
    async prepare(settings, nowMs) {
      const lifetime = tokenLifetime(settings)
      const workload = await forwardAuthWorkload(settings.subjects, settings.tokens, lifetime, { nowMs })
      return {
        env: workload.env,
        args: [],
        workload,
        bareWorkload: exampleWorkload(settings.subjects, { nowMs }),
        path: '/authz/forward',
        verdict: (status, body) => (status === 200 ? 'allow' : pdpVerdict(status, body)),
        notes: () => [`GET /authz/forward (Traefik/Caddy dialect) with X-Forwarded-Method/-Uri and a bearer token; 401 and 403 are answers here, so non-2xx counts them`],
        cleanup: workload.cleanup,
      }
    },
  },
  {
    key: 'p',
    title: 'POST /plan (which resources of a type), embedded store',
    async prepare(settings, nowMs) {
      const decisions = exampleWorkload(settings.subjects, { nowMs })
      // The same questions as (b), asked of every resource of the type at once: the resource is what a plan leaves open.
      const bodies = decisions.bodies.map((body) => {
        const { resource, ...rest } = JSON.parse(body) as { resource: { type: string } }
        return JSON.stringify({ ...rest, resource: { type: resource.type } })
      })
      return {
        env: { PDP_POLICY_DIR: EXAMPLE_POLICY_DIR },
        args: [],
        workload: { bodies, description: `${decisions.description}, as plans (no resource id or attributes)` },
        bareWorkload: decisions,
        path: '/plan',
        verdict: (status, body) => (status === 200 ? (PLAN.exec(body)?.[1] ?? `HTTP ${status}`) : `HTTP ${status}`),
        notes: noNotes,
        cleanup: nothing,
      }
    },
  },
  {
    key: 'cerbos',
    title: 'Cerbos, policy only',
    server: 'cerbos',
    async prepare(settings, nowMs) {
      const installed = installCerbos(settings.cerbosCache)
      if ('skip' in installed) return installed
      const pdpWorkload = exampleWorkload(settings.subjects, { nowMs })
      const bodies = pdpWorkload.bodies.map(toCerbosCheck)
      const verdict = (status: number, body: string) => (status === 200 ? (cerbosVerdict(body) ?? `HTTP ${status}`) : `HTTP ${status}`)
      const agreement = await sameAnswers(pdpWorkload, bodies, installed.binary, verdict)
      return {
        env: {},
        args: [],
        workload: { bodies, description: `${pdpWorkload.description}, as Cerbos check requests (${installed.version})` },
        bareWorkload: pdpWorkload,
        start: () => CerbosServer.start(installed.binary),
        path: '/api/check/resources',
        verdict,
        notes: () => [
          `${installed.version} (${settings.cerbosCache}), policies scripts/bench/cerbos/*.yaml, audit off, one action per check request`,
          `same answers as the PDP's policy-only decisions (a) on ${agreement.asked} of the bodies: ${agreement.same} (${percent(agreement.same, agreement.asked)})`,
        ],
        cleanup: nothing,
      }
    },
  },
  {
    key: 'd',
    title: 'policy + risk, embedded, JWT',
    async prepare(settings, nowMs) {
      const workload = await tokenWorkload(settings.subjects, settings.tokens, tokenLifetime(settings), { nowMs })
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
        notes: () => [
          `generated policy: ${counts.lines} lines (${counts.pLines} p, ${counts.gLines} g), ${counts.roles} roles, ${counts.subjects} subjects, ${counts.resourceTypes} resource types`,
        ],
        cleanup: () => rm(dir, { recursive: true, force: true }),
      }
    },
  },
  ...RUNGS_MICROS.map(
    (micros): Scenario => ({
      key: rungKey(micros),
      group: 'k',
      title: `calibration: the bare route plus ${micros} µs of computation`,
      server: `bare+${micros}µs`,
      async prepare(settings, nowMs) {
        return {
          env: {},
          args: [],
          workload: exampleWorkload(settings.subjects, { nowMs }),
          start: () => ServerProcess.start('bare', ['--burn-us', String(micros)], {}),
          notes: noNotes,
          cleanup: nothing,
        }
      },
    }),
  ),
]

/** Tokens must outlive the whole bench: every scenario's rounds and warm-ups, and a margin. */
function tokenLifetime(settings: Settings): number {
  const seconds = SCENARIOS.length * 2 * (settings.warmup + settings.rounds * settings.duration) + 600
  return Math.min(86_400, Math.max(900, Math.ceil(seconds)))
}

/** How many of the first bodies Cerbos answers as the PDP's policy-only engine does (both asked one at a time). */
async function sameAnswers(pdpWorkload: Workload, cerbosBodies: string[], binary: string, verdict: (status: number, body: string) => string): Promise<{ asked: number; same: number }> {
  const asked = Math.min(500, cerbosBodies.length)
  const pdp = await ServerProcess.start('pdp', ['--policy-only'], { PDP_POLICY_DIR: EXAMPLE_POLICY_DIR })
  const cerbos = await CerbosServer.start(binary)
  let same = 0
  try {
    for (let i = 0; i < asked; i++) {
      const [p, c] = await Promise.all([
        fetch(`http://127.0.0.1:${pdp.port}/decide`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CALLER_TOKEN}` }, body: pdpWorkload.bodies[i]! }),
        fetch(`http://127.0.0.1:${cerbos.port}/api/check/resources`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: cerbosBodies[i]! }),
      ])
      const pdpAnswer = VERDICT.exec(await p.text())?.[1]
      if (pdpAnswer !== undefined && pdpAnswer === verdict(c.status, await c.text())) same++
    }
  } finally {
    await Promise.all([pdp.stop(), cerbos.stop()])
  }
  return { asked, same }
}

const percent = (part: number, whole: number) => (whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)}%`)
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

interface Row {
  key: string
  scenario: string
  server: string
  tally: Tally
  ratio?: number
  skipped?: string
}

function latency(tally: Tally): { p50: number; p99: number } {
  const sorted = Float64Array.from(tally.latencies).sort()
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
}

function table(header: string[], lines: string[][], leftColumns = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)))
  const format = (cells: string[]) => cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [format(header), format(widths.map((w) => '-'.repeat(w))), ...lines.map(format)].join('\n')
}

function formatRows(rows: Row[]): string {
  const header = ['scenario', 'server', 'req/s', 'p50 ms', 'p99 ms', 'p99/p50', 'loop p99 ms', 'loop max ms', 'CPU µs/req', 'load µs/req', 'errors', 'non-2xx', '/bare']
  const lines = rows.map((row) => {
    const t = row.tally
    if (row.skipped) return [row.scenario, row.server, 'skipped', '', '', '', '', '', '', '', '', '', '']
    const { p50, p99 } = latency(t)
    return [
      row.scenario,
      row.server,
      t.rate.toFixed(0),
      p50.toFixed(2),
      p99.toFixed(2),
      (p99 / p50).toFixed(1),
      t.loopP99.length === 0 ? '-' : Math.max(...t.loopP99).toFixed(1),
      t.loopMax.length === 0 ? '-' : Math.max(...t.loopMax).toFixed(1),
      t.responses === 0 ? '-' : (t.cpuMicros / t.responses).toFixed(0),
      t.responses === 0 ? '-' : (t.loadCpuMicros / t.responses).toFixed(0),
      String(t.errors),
      String(t.non2xx),
      row.ratio === undefined ? '' : row.ratio.toFixed(2),
    ]
  })
  return table(header, lines)
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

const PDP_TARGET = (port: number): Target => ({ port, path: '/decide', verdict: pdpVerdict })

/** The stage breakdown's servers: each started with --stages, loaded at one connection. */
const STAGE_RUNS: { key: string; label: string; mode: 'bare' | 'pdp'; args: string[]; log: boolean }[] = [
  { key: 'bare', label: 'bare', mode: 'bare', args: [], log: false },
  { key: 'a', label: '(a)', mode: 'pdp', args: ['--policy-only'], log: false },
  { key: 'b', label: '(b)', mode: 'pdp', args: [], log: false },
  { key: 'f', label: '(f) log', mode: 'pdp', args: [], log: true },
]

const STAGE_LABELS: Record<string, string> = {
  preParsing: 'routing, request id, onRequest hooks (caller auth)',
  preValidation: 'body read + JSON parse + body guard',
  preHandler: 'schema validation (TypeBox/ajv)',
  preSerialization: 'handler: decide (engine; decision log in (f))',
  onSend: 'serialize the answer',
  onResponse: 'socket write + onResponse hooks (metrics)',
}

/** CPU time of this process so far, µs (a busy machine deschedules it; wall time would count that too). */
function cpuNow(): number {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** In-process CPU cost of Fastify's JSON parser and of the body guard on the workload's bodies, µs per body (after a warm-up pass). */
function parseAndGuardMicros(bodies: string[]): { parse: number; guard: number } {
  const parser = Fastify().getDefaultJsonParser('error', 'error')
  const parsed: unknown[] = []
  const parseAll = () => {
    parsed.length = 0
    for (const body of bodies) parser(undefined as never, body, (err, value) => parsed.push(err ?? value))
  }
  const guardAll = () => {
    for (const value of parsed) checkBody(value)
  }
  const passes = 3
  parseAll()
  guardAll()
  let started = cpuNow()
  for (let pass = 0; pass < passes; pass++) parseAll()
  const parse = (cpuNow() - started) / (passes * bodies.length)
  started = cpuNow()
  for (let pass = 0; pass < passes; pass++) guardAll()
  const guard = (cpuNow() - started) / (passes * parsed.length)
  return { parse, guard }
}

async function stageBreakdown(settings: Settings): Promise<void> {
  const workload = exampleWorkload(settings.subjects, { nowMs: Date.now() })
  const columns: { label: string; stages: Extract<ServerMessage, { type: 'stages' }> }[] = []
  for (const run of STAGE_RUNS) {
    const log = run.log ? await decisionLogFile() : undefined
    const server = await ServerProcess.start(run.mode, [...run.args, '--stages'], {
      ...(run.mode === 'pdp' ? settings.pdpEnv : {}),
      PDP_POLICY_DIR: EXAMPLE_POLICY_DIR,
      ...(log ? { PDP_DECISION_LOG: log.path } : {}),
    })
    try {
      const bodies = new BodyCycle(workload)
      await load(settings, PDP_TARGET(server.port), bodies, Math.min(3, settings.stageSeconds), undefined, 1)
      await server.stages()
      await load(settings, PDP_TARGET(server.port), bodies, settings.stageSeconds, undefined, 1)
      columns.push({ label: run.label, stages: await server.stages() })
    } finally {
      await server.stop()
      await log?.cleanup()
    }
  }
  const { parse, guard } = parseAndGuardMicros(workload.bodies)
  const cell = (value: number) => (Number.isFinite(value) ? value.toFixed(1) : '-')
  const lines: string[][] = []
  for (const mark of STAGE_MARKS.slice(1)) {
    lines.push([STAGE_LABELS[mark]!, ...columns.map((c) => cell(c.stages.meanMicros[mark]!))])
    if (mark === 'preValidation') {
      lines.push(['  of which JSON parse (in process)', ...columns.map(() => cell(parse))])
      lines.push(['  of which body guard (in process)', ...columns.map((c) => cell(c.label === 'bare' ? NaN : guard))])
    }
  }
  const sum = (c: (typeof columns)[number]) => STAGE_MARKS.slice(1).reduce((total, mark) => total + c.stages.meanMicros[mark]!, 0)
  lines.push(['sum of the stages', ...columns.map((c) => cell(sum(c)))])
  lines.push(['server CPU per request', ...columns.map((c) => cell(c.stages.cpuMicros / c.stages.requests))])
  lines.push(['CPU outside the stages (HTTP parsing, event loop, GC threads)', ...columns.map((c) => cell(c.stages.cpuMicros / c.stages.requests - sum(c)))])
  const b = columns.find((c) => c.label === '(b)')
  const f = columns.find((c) => c.label === '(f) log')
  if (b && f) lines.push(['decision log: (f) decide − (b) decide', '', '', '', cell(f.stages.meanMicros.preSerialization! - b.stages.meanMicros.preSerialization!)])
  say(`per-stage breakdown, CPU µs per request (mean; the server's CPU clock read at each stage's hooks), one connection, ${settings.stageSeconds} s per server after a warm-up; requests: ${columns.map((c) => `${c.label} ${c.stages.requests}`).join(', ')}`)
  say(table(['stage', ...columns.map((c) => c.label)], lines, 1))
}

interface TargetCheck {
  target: string
  measured: string
  met: boolean | undefined
}

const cpuPerRequest = (t: Tally) => t.cpuMicros / t.responses

/** The calibration rungs the run measured (scenario k): each rung's ratio to the bare route, with its two rows. */
function measuredRungs(rows: Row[]): { rung: Rung; server: Row; bare: Row }[] {
  return RUNGS_MICROS.flatMap((micros) => {
    const server = rows.find((r) => r.key === rungKey(micros) && r.ratio !== undefined && !r.skipped)
    const bare = rows.find((r) => r.key === rungKey(micros) && r.server === 'bare')
    return server && bare ? [{ rung: { addedMicros: micros, ratio: server.ratio! }, server, bare }] : []
  })
}

const rungsOf = (rows: Row[]): Rung[] => measuredRungs(rows).map((measured) => measured.rung)

const asWork = (found: { micros: number; extrapolated: boolean } | undefined) =>
  found === undefined ? 'unreadable' : `${found.extrapolated ? '~' : '≈ '}${found.micros.toFixed(0)} µs${found.extrapolated ? ' (past the last rung)' : ''}`

/** The calibration's own table: each rung's ratio, and the CPU it added per request over its bare rounds. */
function calibrationReport(rows: Row[]): string[] {
  const measured = measuredRungs(rows)
  if (measured.length === 0) return []
  const rungs = measured.map((m) => m.rung)
  const lines = measured.map(({ rung, server, bare }) => [
    `bare route + ${rung.addedMicros} µs`,
    rung.ratio.toFixed(2),
    `+${(cpuPerRequest(server.tally) - cpuPerRequest(bare.tally)).toFixed(0)}`,
  ])
  const scenarios = rows
    .filter((r) => r.ratio !== undefined && !r.skipped && !isRung(r.key))
    .map((r) => `${r.key === 'cerbos' ? 'Cerbos' : `(${r.key})`} ${asWork(addedWorkAt(rungs, r.ratio!))}`)
  return [
    table(['rung', '/bare', 'CPU µs/req added (rung − its bare rounds)'], lines, 1),
    `each server as the bare route plus this much work per request (1/ratio interpolated between the rungs): ${scenarios.join(', ') || 'none run'}`,
  ]
}

function targets(rows: Row[]): TargetCheck[] {
  const pdpRow = (key: string) => rows.find((r) => r.key === key && r.ratio !== undefined && !r.skipped)
  const checks: TargetCheck[] = []
  const rungs = rungsOf(rows)
  const ratioTarget = (key: string, name: string, min: number) => {
    const row = pdpRow(key)
    const bareRow = rows.find((r) => r.key === key && r.server === 'bare')
    // What the throughput ratio would be with the server alone on saturated cores: its CPU per request against the bare route's.
    const byCpu = row && bareRow ? cpuPerRequest(bareRow.tally) / cpuPerRequest(row.tally) : NaN
    // Through the calibration: how much work beyond the bare route the target leaves, and how much the server adds.
    const budget = rungs.length === 0 || !row ? '' : `; the target allows ${asWork(addedWorkAt(rungs, min))} beyond the bare route, this adds ${asWork(addedWorkAt(rungs, row.ratio!))}`
    checks.push(
      row
        ? { target: `${name} ≥ ${min}× bare`, measured: `${row.ratio!.toFixed(2)}× (by CPU per request: ${byCpu.toFixed(2)}×)${budget}`, met: row.ratio! >= min }
        : { target: `${name} ≥ ${min}× bare`, measured: 'not run', met: undefined },
    )
  }
  ratioTarget('a', '(a) policy only', 0.8)
  ratioTarget('b', '(b) risk, embedded, log off', 0.6)
  ratioTarget('f', '(f) risk, embedded, log to a file', 0.5)
  ratioTarget('c', '(c) risk, Redis', 0.45)
  const b = pdpRow('b')
  const cerbos = pdpRow('cerbos')
  if (b && cerbos) {
    // Both against the bare route of their own rounds, so that the machine's drift between the two scenarios cancels.
    const times = b.ratio! / cerbos.ratio!
    checks.push({ target: '(b) ≥ 3× Cerbos', measured: `${times.toFixed(2)}× (${b.tally.rate.toFixed(0)} vs ${cerbos.tally.rate.toFixed(0)} req/s; ratio of their /bare ratios)`, met: times >= 3 })
  } else checks.push({ target: '(b) ≥ 3× Cerbos', measured: 'not run', met: undefined })
  for (const row of rows.filter((r) => r.ratio !== undefined && !r.skipped && r.key !== 'cerbos' && !isRung(r.key))) {
    const { p50, p99 } = latency(row.tally)
    const name = rows.find((r) => r.key === row.key && r.server === 'bare')?.scenario ?? row.key
    checks.push({ target: `${name}: p99 ≤ 4× p50`, measured: `${(p99 / p50).toFixed(1)}× (${p50.toFixed(1)} / ${p99.toFixed(1)} ms)`, met: p99 <= 4 * p50 })
    const loop = Math.max(...row.tally.loopP99)
    checks.push({ target: `${name}: event-loop delay p99 ≤ 5 ms`, measured: `${loop.toFixed(1)} ms (worst round)`, met: loop <= 5 })
  }
  return checks
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2))
  if (!settings) {
    process.stdout.write(USAGE)
    return
  }
  const cpuList = cpus()
  const load1 = () => loadavg().map((l) => l.toFixed(2)).join(' ')
  say('zt-pdp HTTP benchmark')
  say(`machine: ${cpuList[0]?.model.trim() ?? 'unknown CPU'}, ${cpuList.length} cores, ${(totalmem() / 1024 ** 3).toFixed(1)} GB RAM, Node ${process.version}, load average ${load1()} at the start`)
  say(
    `load: autocannon in this process, ${settings.connections} connections, ${settings.rounds} round(s) of ${settings.duration} s per server and scenario, ` +
      `alternating bare/server after ${settings.warmup} s of warm-up each`,
  )
  say('servers: each in its own child process (compiled JavaScript, no loader, as npm start runs the PDP), PDP_DECISION_LOG=off unless said, LOG_LEVEL=warn; CPU per request = the server\'s user+system time / responses; load µs/req = this process\'s (the load generator\'s) over the same rounds, on the same two cores')
  say('callers: every request carries a bearer credential with pdp:decide (PDP_ADMIN_TOKEN, PDP_DECIDE_AUTH=token), so the PDP learns the subjects\' state as behind a gateway')
  const extra = Object.entries(settings.pdpEnv)
  if (extra.length > 0) say(`PDP servers also run with ${extra.map(([k, v]) => `${k}=${v}`).join(' ')}`)
  say('loop: event-loop delay of the server process in each measured round (monitorEventLoopDelay, 1 ms sampling, the 1 ms taken off); the worst round is shown')
  say('')

  const bare = await ServerProcess.start('bare', [], {})
  const rows: Row[] = []
  const notes: string[] = []
  const mixes: string[] = []
  try {
    for (const scenario of SCENARIOS.filter((s) => settings.scenarios.includes(s.key) || (s.group !== undefined && settings.scenarios.includes(s.group)))) {
      const name = `(${scenario.key}) ${scenario.title}`
      const serverName = scenario.server ?? 'pdp'
      const prepared = await scenario.prepare(settings, Date.now())
      if ('skip' in prepared) {
        say(`${name}: skipped: ${prepared.skip}`)
        rows.push({ key: scenario.key, scenario: name, server: serverName, tally: new Tally(), skipped: prepared.skip })
        notes.push(`${name}: skipped: ${prepared.skip}`)
        continue
      }
      let server: BenchServer | undefined
      let rss = 0
      try {
        const startedAt = performance.now()
        server = prepared.start ? await prepared.start() : await ServerProcess.start('pdp', prepared.args, { ...settings.pdpEnv, ...prepared.env })
        say(`${name}: ${serverName} listening after ${((performance.now() - startedAt) / 1000).toFixed(1)} s; ${prepared.workload.description}`)
        const target: Target = { port: server.port, path: prepared.path ?? '/decide', verdict: prepared.verdict ?? pdpVerdict }
        const bareTarget = PDP_TARGET(bare.port)
        const bareTally = new Tally()
        const serverTally = new Tally()
        const { ms, tooSlow } = await probe(target, prepared.workload, settings.maxLatencyMs)
        if (tooSlow) {
          const reason = `two decisions in a row took over ${(Math.min(...ms) / 1000).toFixed(1)} s at rest (over --max-latency-ms ${settings.maxLatencyMs}); not load-tested`
          say(`${name}: ${reason}`)
          rows.push({ key: scenario.key, scenario: name, server: serverName, tally: serverTally, skipped: reason })
          notes.push(`${name}: ${reason}`)
        } else {
          const bareBodies = new BodyCycle(prepared.bareWorkload ?? prepared.workload)
          const serverBodies = new BodyCycle(prepared.workload, prepared.onPick)
          await load(settings, bareTarget, bareBodies, settings.warmup)
          await load(settings, target, serverBodies, settings.warmup)
          serverBodies.measured = true
          for (let r = 1; r <= settings.rounds; r++) {
            const bareRate = await round(settings, bare, bareTarget, bareBodies, bareTally)
            const serverRate = await round(settings, server, target, serverBodies, serverTally)
            say(`${name}: round ${r}/${settings.rounds}: bare ${bareRate.toFixed(0)} req/s, ${serverName} ${serverRate.toFixed(0)} req/s (load average ${load1()})`)
          }
          const ratio = serverTally.rate / bareTally.rate
          rows.push({ key: scenario.key, scenario: name, server: 'bare', tally: bareTally }, { key: scenario.key, scenario: '', server: serverName, tally: serverTally, ratio })
          mixes.push(`${name}: ${verdictMix(serverTally)}`)
        }
        rss = (await server.usage()).rss
        if (server instanceof ServerProcess && server.log.lines > 0) notes.push(`${name}: the server logged ${server.log.lines} warning/error lines; the first: ${server.log.first}`)
      } finally {
        await server?.stop()
        await prepared.cleanup()
      }
      for (const line of await prepared.notes({ rss })) notes.push(`${name}: ${line}`)
      notes.push(`${name}: server RSS after the run: ${mb(rss)}`)
    }
  } finally {
    await bare.stop()
  }

  say('')
  say(formatRows(rows))
  say('')
  say('answers of the servers (share of their responses):')
  for (const line of mixes) say(`  ${line}`)
  if (notes.length > 0) {
    say('')
    say('notes:')
    for (const line of notes) say(`  ${line}`)
  }
  if (settings.stageSeconds > 0) {
    say('')
    await stageBreakdown(settings)
  }
  const calibration = calibrationReport(rows)
  if (calibration.length > 0) {
    say('')
    say('calibration (k): the throughput ratio a fixed amount of added work per request yields on this machine, in this run')
    for (const line of calibration) say(line)
  }
  say('')
  say(`issue 17's targets (load average ${load1()} at the end):`)
  say(table(['target', 'measured', ''], targets(rows).map((c) => [c.target, c.measured, c.met === undefined ? '-' : c.met ? 'met' : 'missed']), 2))
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
