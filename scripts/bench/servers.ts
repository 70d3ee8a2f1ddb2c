/**
 * A server under benchmark, run as a child process of scripts/bench/run.ts (forked with an IPC channel):
 *
 *   bare [--stages]                  a Fastify route answering POST /decide with a constant verdict (the floor)
 *   bare --burn-us N                 the same route doing N µs of computation per request first (calibration)
 *   pdp [--policy-only] [--stages]   the PDP as src/server.ts builds it, configured by the environment
 *
 * It listens on 127.0.0.1 with a free port and tells the parent over IPC ({ type: 'listening', port });
 * asked { type: 'usage' }, it answers with its own CPU time, RSS and event-loop delay since the previous
 * question (perf_hooks.monitorEventLoopDelay), so the parent can charge CPU per request and see stalls
 * without sharing a process with the load generator. With --stages (a bench-only instrumented run, never
 * the product's surface) it marks the process's CPU time at each stage of Fastify's lifecycle for every
 * request and answers { type: 'stages' } with the mean CPU time between them. It exits when the parent disconnects.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { calibratedBurn } from './calibration.js'
import { STAGE_MARKS, type ParentMessage, type ServerMessage, type StageMark } from './protocol.js'

const CONSTANT_VERDICT = { decision: 'allow', reasons: ['policy_allow'] }

/** The bare route; with `burnMicros`, plus that much computation per request (the bench's calibration rungs). */
async function bare(burnMicros: number): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
  if (burnMicros > 0) {
    const { burn } = calibratedBurn()
    app.post('/decide', async () => {
      burn(burnMicros)
      return CONSTANT_VERDICT
    })
  } else app.post('/decide', async () => CONSTANT_VERDICT)
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

// 1 ms sampling: a coarser timer would miss stalls shorter than its interval.
const LOOP_RESOLUTION_MS = 1

/** The process's CPU time so far, µs: between two marks of one request it is that request's cost, not time spent descheduled on a busy machine. */
function cpuNow(): number {
  const { user, system } = process.cpuUsage()
  return user + system
}

/**
 * Timestamps every request (in CPU time; the run uses one connection, so nothing else runs between its marks) at each boundary of STAGE_MARKS. Hooks added after the routes still run for them
 * (Fastify binds hooks at ready), after the application's own hooks of the same kind: so `preValidation` here
 * falls after the body guard, and `onResponse` after the metrics hook. `request` is the http server's
 * 'request' event, prepended so that it fires before Fastify's handler (Node has parsed the headers by then).
 */
function instrument(app: FastifyInstance): () => ServerMessage {
  const MARKS = Symbol('bench stage marks')
  type Marked = IncomingMessage & { [MARKS]?: Float64Array }
  const sums = new Float64Array(STAGE_MARKS.length)
  let complete = 0
  let cpuAtReset = process.cpuUsage()
  const mark = (request: FastifyRequest, index: number) => {
    const marks = (request.raw as Marked)[MARKS]
    if (marks) marks[index] = cpuNow()
  }
  app.server.prependListener('request', (raw: Marked) => {
    const marks = new Float64Array(STAGE_MARKS.length).fill(NaN)
    marks[0] = cpuNow()
    raw[MARKS] = marks
  })
  const at = (name: StageMark) => STAGE_MARKS.indexOf(name)
  app.addHook('preParsing', (request, _reply, payload, done) => {
    mark(request, at('preParsing'))
    done(null, payload)
  })
  app.addHook('preValidation', (request, _reply, done) => {
    mark(request, at('preValidation'))
    done()
  })
  app.addHook('preHandler', (request, _reply, done) => {
    mark(request, at('preHandler'))
    done()
  })
  app.addHook('preSerialization', (request, _reply, payload, done) => {
    mark(request, at('preSerialization'))
    done(null, payload)
  })
  app.addHook('onSend', (request, _reply, payload, done) => {
    mark(request, at('onSend'))
    done(null, payload)
  })
  app.addHook('onResponse', (request, _reply, done) => {
    const marks = (request.raw as Marked)[MARKS]
    if (marks) {
      marks[STAGE_MARKS.length - 1] = cpuNow()
      // Only requests that went through every stage (a 200 with a body) count.
      if (!marks.some(Number.isNaN)) {
        for (let i = 1; i < marks.length; i++) sums[i]! += marks[i]! - marks[i - 1]!
        complete++
      }
    }
    done()
  })
  return () => {
    const meanMicros: Record<string, number> = {}
    STAGE_MARKS.forEach((name, i) => {
      if (i > 0) meanMicros[name] = complete === 0 ? NaN : sums[i]! / complete
    })
    const cpu = process.cpuUsage(cpuAtReset)
    const message: ServerMessage = { type: 'stages', requests: complete, cpuMicros: cpu.user + cpu.system, meanMicros }
    sums.fill(0)
    complete = 0
    cpuAtReset = process.cpuUsage()
    return message
  }
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('servers.ts runs as a child of scripts/bench/run.ts (it needs an IPC channel)')
  const [mode, ...flags] = process.argv.slice(2)
  if (mode !== 'bare' && mode !== 'pdp') throw new Error(`unknown server "${mode}" (bare or pdp)`)
  const burnAt = flags.indexOf('--burn-us')
  const app = mode === 'bare' ? await bare(burnAt < 0 ? 0 : Number(flags[burnAt + 1])) : await pdp(flags.includes('--policy-only'))
  const stages = flags.includes('--stages') ? instrument(app) : undefined
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening on a TCP port')

  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
  loop.enable()
  const ms = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS)
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'stages') {
      if (stages) send(stages())
      return
    }
    if (message.type !== 'usage') return
    const cpu = process.cpuUsage()
    const loopDelay = { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max), samples: loop.count }
    loop.reset()
    send({ type: 'usage', cpuMicros: cpu.user + cpu.system, rss: process.memoryUsage().rss, loopDelay })
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
