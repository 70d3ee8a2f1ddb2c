/**
 * Cerbos beside the PDP: installed on demand outside the project's dependencies (npm install --no-save into a
 * cache folder), run as its own process on the policy fixtures in scripts/bench/cerbos/ (the example policy's
 * RBAC and ownership rules) and asked the same questions as the PDP through its check API.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from './paths.js'

export const CERBOS_PACKAGE = '@cerbos/cerbos-linux-x64'
export const CERBOS_POLICY_DIR = join(ROOT, 'scripts', 'bench', 'cerbos')

/** The binary, installed into `cacheDir` when missing; a reason when it cannot be had. */
export function installCerbos(cacheDir: string): { binary: string; version: string } | { skip: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { skip: `${CERBOS_PACKAGE} runs on linux-x64 only (this is ${process.platform}-${process.arch})` }
  const binary = join(cacheDir, 'node_modules', ...CERBOS_PACKAGE.split('/'), 'cerbos-linux-x64')
  if (!existsSync(binary)) {
    // Bounded: without a registry npm would otherwise retry for many minutes before the bench could skip Cerbos.
    const installed = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--fetch-retries=1', '--fetch-timeout=30000', '--prefix', cacheDir, CERBOS_PACKAGE], {
      encoding: 'utf8',
      timeout: 180_000,
    })
    if (installed.status !== 0 || !existsSync(binary)) {
      // npm's last line only points at its log file; the first error line says what went wrong.
      const lines = (installed.stderr ?? '').split('\n').filter((line) => line.startsWith('npm error') && !line.includes('complete log'))
      const why = lines[0] ?? installed.error?.message ?? `exit ${installed.status}`
      return { skip: `could not install ${CERBOS_PACKAGE} into ${cacheDir}: ${why}` }
    }
  }
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? 'unknown'
  return { binary, version }
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))))
    })
  })
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** A running Cerbos server; usage() reads its CPU time and RSS from /proc. */
export class CerbosServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    /** The folder of its configuration, removed when it stops. */
    private readonly dir: string,
  ) {}

  static async start(binary: string): Promise<CerbosServer> {
    const [httpPort, grpcPort] = [await freePort(), await freePort()]
    const dir = await mkdtemp(join(tmpdir(), 'pdp-bench-cerbos-config-'))
    const config = join(dir, 'config.yaml')
    await writeFile(
      config,
      [
        'server:',
        `  httpListenAddr: "127.0.0.1:${httpPort}"`,
        `  grpcListenAddr: "127.0.0.1:${grpcPort}"`,
        'storage:',
        '  driver: disk',
        '  disk:',
        `    directory: "${CERBOS_POLICY_DIR}"`,
        '    watchForChanges: false',
        'audit:',
        '  enabled: false',
        '',
      ].join('\n'),
    )
    const child = spawn(binary, ['server', `--config=${config}`, '--log-level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr!.on('data', (chunk: Buffer) => {
      if (stderr.length < 4000) stderr += chunk.toString()
    })
    const deadline = Date.now() + 30_000
    for (;;) {
      if (child.exitCode !== null) {
        await rm(dir, { recursive: true, force: true })
        throw new Error(`cerbos exited (code ${child.exitCode}): ${stderr.trim()}`)
      }
      try {
        const response = await fetch(`http://127.0.0.1:${httpPort}/_cerbos/health`)
        if (response.ok) break
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        await rm(dir, { recursive: true, force: true })
        throw new Error(`cerbos did not become healthy within 30 s: ${stderr.trim()}`)
      }
      await new Promise((done) => setTimeout(done, 100))
    }
    return new CerbosServer(child, httpPort, dir)
  }

  async usage(): Promise<{ cpuMicros: number; rss: number }> {
    const stat = await readFile(`/proc/${this.child.pid}/stat`, 'utf8')
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    const status = await readFile(`/proc/${this.child.pid}/status`, 'utf8')
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
    return { cpuMicros: (ticks * 1e6) / TICKS_PER_SECOND, rss: rssKb * 1024 }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((done) => this.child.once('exit', done))
      this.child.kill('SIGTERM')
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    await rm(this.dir, { recursive: true, force: true })
  }
}

interface DecideBody {
  subject: { id: string; roles?: string[]; tenant?: string; attributes?: Record<string, unknown> }
  action: string
  resource: { type: string; id?: string; attributes?: Record<string, unknown> }
}

/** The Cerbos check request asking what a PDP /decide body asks (policy only: Cerbos has no risk engine). */
export function toCerbosCheck(decideBody: string, index: number): string {
  const body = JSON.parse(decideBody) as DecideBody
  const principalAttr: Record<string, unknown> = { ...body.subject.attributes }
  if (body.subject.tenant !== undefined) principalAttr.tenant = body.subject.tenant
  return JSON.stringify({
    requestId: `bench-${index}`,
    principal: { id: body.subject.id, roles: body.subject.roles ?? [], attr: principalAttr },
    resources: [{ actions: [body.action], resource: { kind: body.resource.type, id: body.resource.id ?? 'new', attr: body.resource.attributes ?? {} } }],
  })
}

/** allow or deny, from a check response's one action. */
export function cerbosVerdict(responseBody: string): string | undefined {
  const effect = /"EFFECT_(ALLOW|DENY)"/.exec(responseBody)?.[1]
  return effect === undefined ? undefined : effect.toLowerCase()
}
