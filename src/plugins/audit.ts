import fp from 'fastify-plugin'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { ConfigError } from '../config/config.js'
import { createAuditLog, type AuditLog } from '../audit/audit-log.js'
import type { DestinationStream } from 'pino'

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditLog
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
    const audit = createAuditLog(opts)
    app.decorate('audit', audit)
    app.addHook('onClose', () => audit.close())
  },
  { name: 'audit' },
)
