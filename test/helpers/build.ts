import type { FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import { copyFile, cp, mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { buildApp, type AppOptions } from '../../src/app.js'
import { loadConfig } from '../../src/config/config.js'
import type { Clock } from '../../src/engine/types.js'

export const ROOT = resolve(import.meta.dirname, '../..')
export const EXAMPLE_POLICIES = join(ROOT, 'policies')

interface TestLike {
  teardown(fn: () => unknown): void
}

/** A fresh app per test, closed when the test ends. */
export async function build(
  t: TestLike,
  options: { env?: Record<string, string>; now?: Clock; watchPolicies?: boolean; auditStream?: DestinationStream; webhookBackoffMs?: number } = {},
): Promise<FastifyInstance> {
  const config = loadConfig({ PDP_POLICY_DIR: EXAMPLE_POLICIES, PDP_DECISION_LOG: 'off', ...options.env })
  const appOptions: AppOptions = { config, logger: false }
  if (options.now) appOptions.now = options.now
  if (options.watchPolicies) appOptions.watchPolicies = true
  if (options.auditStream) appOptions.auditStream = options.auditStream
  if (options.webhookBackoffMs !== undefined) appOptions.webhookBackoffMs = options.webhookBackoffMs
  const app = await buildApp(appOptions)
  t.teardown(() => app.close())
  await app.ready()
  return app
}

/**
 * A service trusted to assert subjects: /decide requires a caller credential with scope pdp:decide (the static
 * token has every scope). Only such callers' decisions about subjects they name learn and trigger responses.
 */
export const CALLER = {
  env: { PDP_DECIDE_AUTH: 'token', PDP_ADMIN_TOKEN: 'trusted-service-token-0123456789' },
  headers: { authorization: 'Bearer trusted-service-token-0123456789' },
}

/** A copy of a policy directory that a test may edit. */
export async function policyCopy(t: TestLike, from = EXAMPLE_POLICIES): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pdp-policy-'))
  await cp(from, dir, { recursive: true })
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * A GEODATADIR as an operator would mount one: geoip-lite's bundled city files except its IPv6 ranges, so that the
 * directory is unusable until `complete()` copies those too.
 */
export async function partialGeoipData(t: TestLike): Promise<{ dir: string; complete(): Promise<void> }> {
  const bundled = join(dirname(createRequire(import.meta.url).resolve('geoip-lite/package.json')), 'data')
  const dir = await mkdtemp(join(tmpdir(), 'pdp-geodata-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  for (const file of ['geoip-city.dat', 'geoip-city-names.dat']) await copyFile(join(bundled, file), join(dir, file))
  return { dir, complete: () => copyFile(join(bundled, 'geoip-city6.dat'), join(dir, 'geoip-city6.dat')) }
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.parse('2026-03-01T12:00:00Z')) {
  let now = start
  return {
    now: () => now,
    set: (ms: number) => {
      now = ms
    },
    advance: (ms: number) => {
      now += ms
    },
  }
}

/** Collects the audit stream's lines in memory. */
export function auditCapture() {
  const lines: Record<string, unknown>[] = []
  const stream: DestinationStream = {
    write(chunk: string) {
      for (const text of chunk.split('\n')) if (text.trim() !== '') lines.push(JSON.parse(text))
    },
  }
  return { lines, stream }
}

/** The context of a request from a trusted situation (managed device, authentication a minute old): no risk points. */
export function trustedContext(nowMs: number, deviceId = 'laptop-1') {
  return {
    device: { id: deviceId, managed: true, encrypted: true, osUpToDate: true },
    session: { id: 's-1', authTime: Math.floor(nowMs / 1000) - 60, amr: ['pwd', 'otp'] },
  }
}
