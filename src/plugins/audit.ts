import fp from 'fastify-plugin'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { ConfigError } from '../config/config.js'
import { createAuditLog, type AuditLog } from '../audit/audit-log.js'
import type { DestinationStream } from 'pino'
import type { DecisionLogEntry } from '../engine/ports.js'

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditLog
    /** Also hands every decision to `listener` (the explorer's ring); returns the function that stops it. */
    onDecision(listener: (entry: DecisionLogEntry) => void): () => void
  }
}

export interface AuditPluginOptions {
  destination: string
  redactPaths: readonly string[]
  stream?: DestinationStream
}

/** The decision and audit stream; flushed when the app closes. */
export default fp<AuditPluginOptions>(
  async (app, opts) => {
    if (!opts.stream && opts.destination !== 'stdout' && opts.destination !== 'off') {
      // pino opens the file asynchronously and would crash the running server on failure: try it now instead.
      try {
        mkdirSync(dirname(opts.destination), { recursive: true })
        closeSync(openSync(opts.destination, 'a'))
      } catch (err) {
        throw new ConfigError('PDP_DECISION_LOG', `cannot append to ${opts.destination} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
      }
    }
    const log = createAuditLog({
      ...opts,
      onDrop: (dropped) => app.log.error({ dropped }, 'decision log: the destination is more than 64 MiB behind; lines are dropped'),
      onWriteError: (error) =>
        app.log.error({ code: error.code, destination: opts.destination }, 'decision log: a write failed; decisions go on, lines wait (up to 64 MiB) and are retried with the next ones'),
      onRecovered: (failedWrites) => app.log.info({ failedWrites, destination: opts.destination }, 'decision log: writing again'),
    })
    const listeners = new Set<(entry: DecisionLogEntry) => void>()
    const audit: AuditLog = {
      ...log,
      write(make) {
        if (listeners.size === 0) return log.write(make)
        // Built once for every reader; a listener's failure must never reach the decision.
        const entry = make()
        for (const listener of listeners) {
          try {
            listener(entry)
          } catch (err) {
            app.log.warn({ error: (err as Error).message }, 'decision listener failed')
          }
        }
        log.write(() => entry)
      },
    }
    app.decorate('audit', audit)
    app.decorate('onDecision', (listener: (entry: DecisionLogEntry) => void) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    })
    app.addHook('onClose', () => audit.close())
  },
  { name: 'audit' },
)
