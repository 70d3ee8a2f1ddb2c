import fp from 'fastify-plugin'
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
    const audit = createAuditLog(opts)
    app.decorate('audit', audit)
    app.addHook('onClose', () => audit.close())
  },
  { name: 'audit' },
)
