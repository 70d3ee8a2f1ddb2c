/**
 * A server under benchmark, run as a child process of scripts/bench/run.ts (forked with an IPC channel):
 *
 *   bare              a Fastify route answering POST /decide with a constant verdict (the floor)
 *   pdp [--policy-only]  the PDP as src/server.ts builds it, configured by the environment
 *
 * It listens on 127.0.0.1 with a free port and tells the parent over IPC ({ type: 'listening', port });
 * asked { type: 'usage' }, it answers with its own CPU time and RSS, so the parent can charge CPU per
 * request without sharing a process with the load generator. It exits when the parent disconnects.
 */
import Fastify, { type FastifyInstance } from 'fastify'

export type ServerMessage =
  | { type: 'listening'; port: number }
  | { type: 'usage'; cpuMicros: number; rss: number }
  | { type: 'failed'; message: string }

export type ParentMessage = { type: 'usage' }

const CONSTANT_VERDICT = { decision: 'allow', reasons: ['policy_allow'] }

async function bare(): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
  app.post('/decide', async () => CONSTANT_VERDICT)
  return app
}

async function pdp(policyOnly: boolean): Promise<FastifyInstance> {
  // Loaded here so that the bare server's process holds nothing of the PDP.
  const { buildApp } = await import('../../src/app.js')
  const { loadConfig } = await import('../../src/config/config.js')
  return buildApp({ config: loadConfig(), policyOnly })
}

function send(message: ServerMessage): void {
  process.send?.(message)
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('servers.ts runs as a child of scripts/bench/run.ts (it needs an IPC channel)')
  const [mode, flag] = process.argv.slice(2)
  if (mode !== 'bare' && mode !== 'pdp') throw new Error(`unknown server "${mode}" (bare or pdp)`)
  const app = mode === 'bare' ? await bare() : await pdp(flag === '--policy-only')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening on a TCP port')

  process.on('message', (message: ParentMessage) => {
    if (message.type !== 'usage') return
    const cpu = process.cpuUsage()
    send({ type: 'usage', cpuMicros: cpu.user + cpu.system, rss: process.memoryUsage().rss })
  })
  process.on('disconnect', () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
  send({ type: 'listening', port: address.port })
}

main().catch((err: unknown) => {
  send({ type: 'failed', message: err instanceof Error ? err.message : String(err) })
  process.exit(1)
})
