import type { FastifyRateLimitStore } from '@fastify/rate-limit'
import type { StateStore } from '../engine/ports.js'

type IncrCallback = (error: Error | null, result?: { current: number; ttl: number }) => void

/**
 * A store for @fastify/rate-limit that counts through the state store: each count is one batch, so it is
 * bounded by the store's time-out like every other store call, and a stalled Redis fails it quickly
 * (the limiter then skips, skipOnError) instead of holding the request. The plugin's own Redis store
 * calls the client directly and waits as long as Redis does.
 *
 * Fixed windows: the first request of a window creates the counter with the window as its TTL; later
 * increments keep that TTL. The batch is atomic, so replicas sharing one Redis count together.
 */
export function stateStoreRateLimit(store: StateStore, namespace: string) {
  return class StateStoreRateLimit implements FastifyRateLimitStore {
    prefix = namespace

    /** The plugin passes the window (ms) as the third argument, although its types do not say so. */
    incr(key: string, callback: IncrCallback, timeWindow?: number): void {
      if (timeWindow === undefined) {
        callback(new Error('the rate limiter gave no time window'))
        return
      }
      const counter = `${this.prefix}${key}`
      const batch = store.batch()
      batch.setIfAbsent(counter, '0', timeWindow)
      const current = batch.incrBy(counter, 1, 0)
      const ttl = batch.pTtl(counter)
      batch.exec().then(
        () => callback(null, { current: current.value, ttl: Math.max(0, ttl.value) }),
        (error: Error) => callback(error),
      )
    }

    /** A route with its own limit counts under its own keys, as the plugin's stores do. */
    child(routeOptions: Parameters<FastifyRateLimitStore['child']>[0]): StateStoreRateLimit {
      // The plugin hands over its merged parameters, the route under `routeInfo` (its types say otherwise).
      const route = (routeOptions as unknown as { routeInfo: { method: string; url: string } }).routeInfo
      const child = new StateStoreRateLimit()
      child.prefix = `${this.prefix}${route.method}${route.url}-`
      return child
    }
  }
}
