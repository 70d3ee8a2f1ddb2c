import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../helpers/build.js'
import { CLIENT_TIMEOUT_MS, fixture, replay, type PdpState, type Send } from './corpus.js'
import { freePort, rawRequest, waitForPort } from './net.js'
import { deadline } from '../helpers/deadline.js'

type Tap = import('tap').Test

export interface Ports {
  listen: number
  pdp: number
  upstream: number
}

export interface LiveGateway {
  name: string
  binary: string
  example: string
  /** The shipped example with only its ports and file paths changed, written into dir; returns the command line. */
  prepare(example: string, ports: Ports, dir: string): Promise<{ args: string[]; env?: Record<string, string> }>
}

/** Replaces `from` (which must occur exactly `count` times) so a changed example fails here instead of being tested half-changed. */
export function substitute(text: string, from: string, to: string, count = 1): string {
  const found = text.split(from).length - 1
  if (found !== count) throw new Error(`expected ${count} × "${from}" in the example, found ${found}`)
  return text.split(from).join(to)
}

function installed(binary: string): boolean {
  return spawnSync(binary, ['-v'], { stdio: 'ignore' }).error === undefined
}

/**
 * Runs the corpus through the real gateway: one process per PDP state (up, stopped, frozen), started from the
 * shipped example, in front of the echo upstream. Without the binary the file is skipped, except under CI.
 */
export async function runLive(tap: Tap, gw: LiveGateway): Promise<void> {
  if (!installed(gw.binary)) {
    const message = `${gw.binary} is not installed: the live ${gw.name} gateway test needs it (.ci/run installs Debian's package)`
    if (process.env.CI === 'true') tap.fail(message)
    else tap.skip(message, () => {})
    return
  }
  // One parent test, so the processes and servers live until its last case is done.
  await tap.test(`${gw.name} (live, ${gw.example})`, async (t) => {
    const f = await fixture(t)
    const example = await readFile(join(ROOT, gw.example), 'utf8')
    await replay(t, gw.name, f, async (state: PdpState): Promise<Send> => {
      const dir = await mkdtemp(join(tmpdir(), `pdp-${gw.name}-`))
      await mkdir(join(dir, 'logs'))
      const ports: Ports = { listen: await freePort(), pdp: await f.pdpPortFor(state), upstream: f.upstreamPort }
      const { args, env } = await gw.prepare(example, ports, dir)
      const child = spawn(gw.binary, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d) => (stderr += d))
      t.teardown(async () => {
        if (child.exitCode === null) {
          child.kill('SIGTERM')
          const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
          await once(child, 'exit')
          clearTimeout(killer)
        }
        await rm(dir, { recursive: true, force: true })
      })
      await waitForPort(ports.listen, deadline(60_000), () => (child.exitCode === null ? undefined : `${gw.name} exited (${child.exitCode}): ${stderr}`))
      return (request) => rawRequest(ports.listen, request, CLIENT_TIMEOUT_MS)
    })
  })
}

export const NGINX: LiveGateway = {
  name: 'nginx',
  binary: process.env.PDP_TEST_NGINX ?? 'nginx',
  example: 'examples/nginx/nginx.conf',
  async prepare(example, ports, dir) {
    let conf = substitute(example, 'server 127.0.0.1:3000;', `server 127.0.0.1:${ports.upstream};`)
    conf = substitute(conf, 'server 127.0.0.1:8080;', `server 127.0.0.1:${ports.pdp};`)
    conf = substitute(conf, 'listen 8000;', `listen 127.0.0.1:${ports.listen};`)
    // Debian's build keeps temporary files and the access log under /var: here they go into the test's directory.
    const paths = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((p) => `${p}_temp_path ${join(dir, p)};`).join(' ')
    conf = substitute(conf, 'http {', `http {\n  ${paths} access_log ${join(dir, 'logs/access.log')};`)
    const file = join(dir, 'nginx.conf')
    await writeFile(file, conf)
    return { args: ['-p', dir, '-c', file, '-e', 'stderr', '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`] }
  },
}

export const CADDY: LiveGateway = {
  name: 'caddy',
  binary: process.env.PDP_TEST_CADDY ?? 'caddy',
  example: 'examples/caddy/Caddyfile',
  async prepare(example, ports, dir) {
    let conf = substitute(example, '127.0.0.1:3000', `127.0.0.1:${ports.upstream}`)
    conf = substitute(conf, '127.0.0.1:8080', `127.0.0.1:${ports.pdp}`)
    conf = substitute(conf, "\n:8000 {", `\n:${ports.listen} {`)
    const file = join(dir, 'Caddyfile')
    await writeFile(file, conf)
    // Caddy keeps its state under XDG directories: here, the test's directory.
    return {
      args: ['run', '--config', file, '--adapter', 'caddyfile'],
      env: { HOME: dir, XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config') },
    }
  },
}
