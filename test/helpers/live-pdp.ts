import type { FastifyRequest } from 'fastify'
import type { AddressInfo } from 'node:net'
import { buildApp, type AppOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config/config.js'
import type { Clock } from '../../src/engine/types.js'
import { EXAMPLE_POLICIES } from './build.js'

interface TestLike {
  teardown(fn: () => unknown): void
}

export interface LivePdp {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** Every request that reached the PDP, in order: method, path, the Authorization header and the parsed body (once it got that far). */
  requests: { method: string; url: string; authorization: string | undefined; body?: unknown }[]
}

/** The real service listening on an ephemeral loopback port, closed when the test ends. */
export async function livePdp(t: TestLike, options: { env?: Record<string, string>; now?: Clock } = {}): Promise<LivePdp> {
  const config = loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_DECISION_LOG: 'off', ...options.env })
  const appOptions: AppOptions = { config, logger: false }
  if (options.now) appOptions.now = options.now
  const app = await buildApp(appOptions)
  t.teardown(() => app.close())
  const requests: LivePdp['requests'] = []
  const seen = new WeakMap<FastifyRequest, LivePdp['requests'][number]>()
  app.addHook('onRequest', async (request) => {
    const entry = { method: request.method, url: request.url, authorization: request.headers.authorization }
    seen.set(request, entry)
    requests.push(entry)
  })
  app.addHook('preHandler', async (request) => {
    const entry = seen.get(request)
    if (entry) entry.body = request.body
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, requests }
}
