import fp from 'fastify-plugin'
import { createStateStore, type StateStore } from '../store/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: StateStore
  }
}

export interface StorePluginOptions {
  redisUrl?: string
  sentinels?: { host: string; port: number }[]
  sentinelMaster?: string
  clusterNodes?: { host: string; port: number }[]
  prefix: string
  timeoutMs: number
  maxKeys: number
  maxBytes: number
  now: () => number
}

/** The state store (embedded, or Redis when REDIS_URL, sentinels or cluster nodes are set); closed with the app. */
export default fp<StorePluginOptions>(
  async (app, opts) => {
    const options: Parameters<typeof createStateStore>[0] = {
      prefix: opts.prefix,
      timeoutMs: opts.timeoutMs,
      maxKeys: opts.maxKeys,
      maxBytes: opts.maxBytes,
      now: opts.now,
      onError: (err) => app.log.warn({ error: err.message }, 'state store connection problem'),
    }
    if (opts.redisUrl !== undefined) options.redisUrl = opts.redisUrl
    if (opts.sentinels !== undefined) options.sentinels = opts.sentinels
    if (opts.sentinelMaster !== undefined) options.sentinelMaster = opts.sentinelMaster
    if (opts.clusterNodes !== undefined) options.clusterNodes = opts.clusterNodes
    const store = await createStateStore(options)
    app.decorate('store', store)
    app.addHook('onClose', () => store.close())
  },
  { name: 'store' },
)
