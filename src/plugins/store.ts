import fp from 'fastify-plugin'
import { createStateStore, type StateStore } from '../store/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: StateStore
  }
}

export interface StorePluginOptions {
  redisUrl?: string
  prefix: string
  timeoutMs: number
  maxKeys: number
  now: () => number
}

/** The state store (embedded, or Redis when REDIS_URL is set); closed with the app. */
export default fp<StorePluginOptions>(
  async (app, opts) => {
    const options: Parameters<typeof createStateStore>[0] = {
      prefix: opts.prefix,
      timeoutMs: opts.timeoutMs,
      maxKeys: opts.maxKeys,
      now: opts.now,
      onError: (err) => app.log.warn({ error: err.message }, 'state store connection problem'),
    }
    if (opts.redisUrl !== undefined) options.redisUrl = opts.redisUrl
    const store = await createStateStore(options)
    app.decorate('store', store)
    app.addHook('onClose', () => store.close())
  },
  { name: 'store' },
)
