import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { deadline, until } from './deadline.js'
import { freePort } from '../gateways/net.js'

const run = promisify(execFile)

/** Generous for a loaded machine: starting three servers and agreeing on slots takes a second or two when idle. */
const START_DEADLINE_MS = deadline(120_000)

export interface RedisCluster {
  /** The masters, each owning a third of the slots. */
  nodes: { host: string; port: number }[]
  /** PDP_REDIS_CLUSTER_NODES for these nodes. */
  env: string
  /** Sends a signal to the node on this port: SIGSTOP stalls it (it holds connections but answers nothing), SIGCONT resumes it. */
  signal(port: number, signal: NodeJS.Signals): void
}

/**
 * Whether a Redis Cluster can be started here: it needs Debian's redis-server and redis-cli. Under CI their absence
 * fails the suite (CI installs them); a developer machine without them skips it and says so.
 */
export function redisClusterSkip(): string | false {
  const missing = ['redis-server', 'redis-cli'].filter((binary) => spawnSync(binary, ['--version']).status !== 0)
  if (missing.length === 0) return false
  const why = `Redis Cluster suite needs ${missing.join(' and ')} on PATH`
  if (process.env.CI) throw new Error(`${why}, and CI must run it`)
  return `${why}; skipped`
}

/** Whether a Redis answers PONG on the port. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => done(d.toString().startsWith('+PONG')))
  })
}

/**
 * Starts a real three-master Redis Cluster (no replicas, nothing persisted) in a temporary directory, on free ports,
 * and stops it when the test ends (anything with a teardown, so a bench can use it too). Each node's cluster bus gets
 * its own free port, since port + 10000 may be taken or out of range.
 */
export async function startRedisCluster(t: { teardown(fn: () => unknown): void }): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'pdp-cluster-'))
  const servers: ChildProcess[] = []
  t.teardown(async () => {
    for (const server of servers) if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL')
    await Promise.all(servers.map((server) => (server.exitCode === null && server.signalCode === null ? once(server, 'exit') : undefined)))
    await rm(dir, { recursive: true, force: true })
  })
  const ports: number[] = []
  const busPorts: number[] = []
  // Six distinct ports: each freePort() call may hand back one released just before.
  while (ports.length < 3) {
    const port = await freePort()
    const bus = await freePort()
    if (port !== bus && ![...ports, ...busPorts].includes(port) && ![...ports, ...busPorts].includes(bus)) {
      ports.push(port)
      busPorts.push(bus)
    }
  }
  ports.forEach((port, i) => {
    const server = spawn(
      'redis-server',
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-port', String(busPorts[i]),
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--dir', dir,
        '--save', '',
        '--appendonly', 'no',
        '--daemonize', 'no',
      ],
      { stdio: 'ignore' },
    )
    servers.push(server)
  })
  for (const port of ports) await until(() => pong(port), `Redis Cluster node ${port} to answer`, START_DEADLINE_MS, 100)
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
    timeout: START_DEADLINE_MS,
  })
  // Every node must agree that all slots are served before a client's first slot map is right.
  for (const port of ports) {
    const ready = async () => {
      const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'], { timeout: deadline(5000) })
      return /^cluster_state:ok\r?$/m.test(stdout) && /^cluster_known_nodes:3\r?$/m.test(stdout)
    }
    await until(ready, `Redis Cluster node ${port} to report cluster_state:ok`, START_DEADLINE_MS, 100)
  }
  const nodes = ports.map((port) => ({ host: '127.0.0.1', port }))
  const signal = (port: number, signal: NodeJS.Signals) => {
    const server = servers[ports.indexOf(port)]
    if (!server) throw new Error(`no cluster node on port ${port}`)
    server.kill(signal)
  }
  return { nodes, env: nodes.map((n) => `${n.host}:${n.port}`).join(','), signal }
}
