import t, { type Test } from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { createInterface } from 'node:readline'
import { ROOT, trustedContext } from '../helpers/build.js'
import { deadline } from '../helpers/deadline.js'
import { distIsCurrent } from '../helpers/dist.js'
import { DOCKERFILE, copyPaths, execForm, parseDockerfile, stageEnv, workdir } from './dockerfile.js'

/**
 * What the image's runtime stage does, without a container engine: the same files copied (the build
 * stage's output compiled here with the repository's tsc), the same `npm ci` line, the same ENV and CMD.
 * Needs the npm registry (or a warm npm cache).
 */
const stages = parseDockerfile(DOCKERFILE)
const runtime = stages.at(-1)!
const build = stages.find((s) => s.name === 'build')!
const APP = workdir(runtime)
/** A start takes about 1.5 CPU-seconds; this guard only names a hang. */
const STARTUP_DEADLINE_MS = deadline(120_000)

const dir = await mkdtemp(join(tmpdir(), 'pdp-image-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

/** A path inside the image, mapped into the temporary copy. */
const inImage = (path: string) => (path === APP || path.startsWith(APP + '/') ? join(dir, posix.relative(APP, path)) : path)

/** Without tap's NODE_OPTIONS (its process-info hook), as outside the test runner. */
const { NODE_OPTIONS: _tapHooks, ...plainEnv } = process.env

/**
 * Runs a command to its end without blocking this process: npm test runs a whole group of test files in one process,
 * and a synchronous npm ci (some 10 CPU-seconds from a warm cache, plus the registry's time from a cold one) would
 * stall the other files' tests for as long, past their own time-outs on a busy machine.
 */
async function run(command: string, args: string[], cwd: string): Promise<void> {
  const child = spawn(command, args, { cwd, env: plainEnv, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const timer = setTimeout(() => child.kill('SIGKILL'), deadline(300_000))
  const [code, signal] = (await once(child, 'close').finally(() => clearTimeout(timer))) as [number | null, NodeJS.Signals | null]
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${code ?? signal}): ${stderr}`)
}

// The build stage's output: its WORKDIR/dist is tsc's outDir. The repository's dist/ is that output when it is
// current; otherwise the sources are compiled into the copy (tsc is most of this test's CPU).
for (const ins of runtime.instructions.filter((i) => i.keyword === 'COPY')) {
  const { sources, dest } = copyPaths(ins)
  const target = inImage(posix.resolve(APP, dest))
  for (const source of sources) {
    if (ins.flags.from === build.name) {
      const outDir = posix.relative(workdir(build), source)
      // Only dist/src: dist/ may also hold the bench scripts' build (tsconfig.bench.json), which the image does not.
      if (outDir === 'dist' && (await distIsCurrent())) await cp(join(ROOT, 'dist/src'), join(dir, 'dist/src'), { recursive: true })
      else await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json'), '--outDir', join(dir, outDir)], ROOT)
    } else {
      await cp(join(ROOT, source), dest.endsWith('/') ? join(target, posix.basename(source)) : target, { recursive: true })
    }
  }
}

// The runtime stage's `npm ci …`, without whatever the same RUN line does around it.
const npmCi = runtime.instructions
  .filter((i) => i.keyword === 'RUN')
  .flatMap((i) => i.args.split('&&').map((part) => part.trim()))
  .find((part) => part.startsWith('npm ci'))
if (!npmCi) throw new Error('the runtime stage runs no npm ci')
await run('npm', npmCi.split(/\s+/).slice(1), dir)

const imageEnv = Object.fromEntries(Object.entries(stageEnv(runtime)).map(([k, v]) => [k, inImage(v)]))
const cmd = execForm(runtime.instructions.filter((i) => i.keyword === 'CMD').at(-1)!.args)
const healthcheck = execForm(
  runtime.instructions
    .find((i) => i.keyword === 'HEALTHCHECK')!
    .args.replace(/^CMD\s+/, ''),
)

type LogLine = Record<string, unknown>

interface Started {
  child: ChildProcess
  base: string
  port: string
  stderr: () => string
  /** Resolves with the first stdout JSON line, seen before or after the call, that matches (within the deadline). */
  logged: (match: (line: LogLine) => boolean) => Promise<LogLine>
}

/** Starts the image's CMD (optionally behind a wrapper) and waits for its listening line. */
async function start(t: Test, wrapper: string[] = []): Promise<Started> {
  const env = { PATH: process.env.PATH ?? '', ...imageEnv, HOST: '127.0.0.1', PORT: '0' }
  const argv = [...wrapper, cmd[0] === 'node' ? process.execPath : cmd[0]!, ...cmd.slice(1)]
  const child = spawn(argv[0]!, argv.slice(1), { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  const lines: LogLine[] = []
  const waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = []
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine
    try {
      line = JSON.parse(text) as LogLine
    } catch {
      return
    }
    lines.push(line)
    for (const waiter of waiters.filter((w) => w.match(line))) {
      waiters.splice(waiters.indexOf(waiter), 1)
      waiter.resolve(line)
    }
  })
  const logged = (match: (line: LogLine) => boolean) =>
    new Promise<LogLine>((resolve, reject) => {
      const seen = lines.find(match)
      if (seen) return resolve(seen)
      const guard = setTimeout(() => reject(new Error(`no expected line after ${STARTUP_DEADLINE_MS} ms: ${stderr}`)), STARTUP_DEADLINE_MS)
      waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(guard)
          resolve(line)
        },
      })
      child.on('exit', (code) => {
        clearTimeout(guard)
        reject(new Error(`exited with ${code} before the expected line: ${stderr}`))
      })
    })
  const listening = await logged((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at '))
  const base = String(listening.msg).slice('Server listening at '.length)
  return { child, base, port: new URL(base).port, stderr: () => stderr, logged }
}

async function decide(base: string, body: unknown) {
  const res = await fetch(`${base}/decide`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: (await res.json()) as { decision: string; reasons: string[]; policyVersion: string } }
}

async function healthcheckExit(port: string): Promise<number | null> {
  const probe = spawn(process.execPath, healthcheck.slice(1), { env: { PORT: port }, stdio: 'ignore' })
  const [code] = (await once(probe, 'exit')) as [number | null]
  return code
}

async function exercise(t: Test, server: Started) {
  const health = await fetch(`${server.base}/healthz`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok' })

  const ready = await fetch(`${server.base}/readyz`)
  t.equal(ready.status, 200)
  t.match(await ready.json(), { status: 'ready', store: { kind: 'memory', ok: true } })

  const allowed = await decide(server.base, {
    subject: { id: 'bob', tenant: 'acme' },
    action: 'read',
    resource: { type: 'users', id: 'carol' },
    context: trustedContext(Date.now()),
  })
  t.equal(allowed.status, 200)
  t.equal(allowed.body.decision, 'allow')
  t.match(allowed.body.policyVersion, /^[0-9a-f]{16}$/)

  const denied = await decide(server.base, { subject: { id: 'dave', tenant: 'globex' }, action: 'read', resource: { type: 'users' } })
  t.equal(denied.body.decision, 'deny')
  t.equal(denied.body.reasons[0], 'no_matching_policy')

  // geoip-lite's database ships inside node_modules: a public address must locate.
  const located = await decide(server.base, {
    subject: { id: 'bob', tenant: 'acme' },
    action: 'read',
    resource: { type: 'users' },
    context: { ...trustedContext(Date.now()), ip: '81.2.69.142' },
  })
  const risk = (located.body as unknown as { risk: { signals: { name: string; value: { country?: string } }[] } }).risk
  t.equal(risk.signals.find((s) => s.name === 'location')?.value.country, 'GB')

  const metrics = await (await fetch(`${server.base}/metrics`)).text()
  t.match(metrics, /pdp_decisions_total\{decision="allow",reason="policy_allow"\} 2/)

  t.equal(await healthcheckExit(server.port), 0, "the image's HEALTHCHECK passes")
}

t.test('the production install starts, answers /healthz and decides', async (t) => {
  const server = await start(t)
  await exercise(t, server)
  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit')
  t.equal(code, 0, 'exits 0 on SIGTERM')
  t.not(await healthcheckExit(server.port), 0, 'the HEALTHCHECK fails once the server is gone')
})

/** A private mount namespace whose root is remounted read-only: stricter than the image, where /tmp stays writable. */
const READ_ONLY_ROOT = ['unshare', '--map-root-user', '--mount', 'sh', '-c', 'mount -o remount,bind,ro / && exec "$@"', 'sh']
const readOnlyProbe = spawnSync(READ_ONLY_ROOT[0]!, [...READ_ONLY_ROOT.slice(1), 'sh', '-c', '! touch "$0/.write-probe" 2>/dev/null', dir], { encoding: 'utf8' })

t.test(
  'with a read-only root filesystem it starts, decides and reloads its policy',
  { skip: readOnlyProbe.status === 0 ? false : 'this machine cannot make a read-only mount namespace (unshare)' },
  async (t) => {
    const server = await start(t, READ_ONLY_ROOT)
    await exercise(t, server)
    server.child.kill('SIGHUP')
    t.match(await server.logged((l) => l.msg === 'policy reloaded'), { changed: false }, 'SIGHUP re-read the policy files')
    const status = (await (await fetch(`${server.base}/readyz`)).json()) as { policy: { reloads: { success: number; failure: number } } }
    t.same(status.policy.reloads, { success: 1, failure: 0 })
    t.equal(server.stderr(), '', 'nothing on stderr')
  },
)
