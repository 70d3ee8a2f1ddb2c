import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { createConnection } from 'node:net'
import { deadline } from './deadline.js'

const DEFAULT_URL = 'redis://127.0.0.1:6379/15'

/**
 * PDP_STORE_TIMEOUT_MS for a live Redis in tests that are not about time-outs. A Redis call takes a millisecond,
 * but the time-out is a timer in the PDP's event loop: a loop busy for longer than it (start-up, GC, a loaded
 * machine) fires the timer before the answer is read, so it must be far above any such pause.
 */
export const STORE_TIMEOUT_MS = String(deadline(5_000))

/** Answers whether a Redis server replies PONG at the URL, within a guard that a loaded machine does not reach (a miss skips the suites). */
function answers(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(deadline(10_000), () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => done(d.toString().startsWith('+PONG')))
  })
}

export interface RedisTarget {
  url: string | undefined
  /** Why the Redis suite does not run here, when it does not. */
  skip: string | false
}

/**
 * CI sets PDP_TEST_REDIS_URL and must run the Redis suites (an unreachable server fails them);
 * a developer machine without Redis skips them and says so.
 */
export async function redisTarget(): Promise<RedisTarget> {
  const configured = process.env.PDP_TEST_REDIS_URL
  const url = configured ?? DEFAULT_URL
  if (await answers(url)) return { url, skip: false }
  if (configured) throw new Error(`PDP_TEST_REDIS_URL is set but no Redis answers at ${configured}`)
  return { url: undefined, skip: `Redis suite skipped: no Redis at ${DEFAULT_URL}; set PDP_TEST_REDIS_URL to run it` }
}

/** A key prefix no other test uses. */
export function testPrefix(): string {
  return `pdptest:${randomBytes(6).toString('hex')}:`
}

/** A key prefix no other test uses, whose keys are deleted from the Redis at `url` when the test ends. */
export function isolatedPrefix(t: Test, url: string): string {
  const prefix = testPrefix()
  t.teardown(async () => {
    const { Redis } = await import('ioredis')
    const raw = new Redis(url)
    const keys = await raw.keys(`${prefix}*`)
    if (keys.length) await raw.del(...keys)
    await raw.quit()
  })
  return prefix
}

/**
 * Runs a suite once on the embedded store and once on Redis (skipped, saying why, without one);
 * the suite gets the environment that selects the store.
 */
export async function onBothStores(name: string, suite: (t: Test, env: Record<string, string>) => Promise<void>): Promise<void> {
  const target = await redisTarget()
  t.test(`${name} (memory store)`, async (t) => suite(t, {}))
  t.test(`${name} (Redis store)`, { skip: target.skip }, async (t) => {
    await suite(t, { REDIS_URL: target.url!, PDP_REDIS_PREFIX: isolatedPrefix(t, target.url!), PDP_STORE_TIMEOUT_MS: STORE_TIMEOUT_MS })
  })
}
