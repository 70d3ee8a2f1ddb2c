import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { auditCapture, build, manualClock } from '../helpers/build.js'
import * as hostile from '../helpers/hostile.js'
import { redisTarget, isolatedPrefix } from '../helpers/redis.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'
import { MemoryStateStore } from '../../src/store/memory-store.js'
import { RedisStateStore } from '../../src/store/redis-store.js'

/**
 * Generated hostile bodies against every JSON route: none may answer 5xx, and none answered 4xx may
 * change anything (the store's contents, the decision log, the audit stream). Fixed seed, bounded runs.
 */

const ADMIN = 'hostile-input-admin-token-0123456789abcdef'
const clock = manualClock()
const nowSec = Math.floor(clock.now() / 1000)
const issuer = await createIssuer()
const jwksFile = await issuer.jwksFile()
const env = {
  PDP_ADMIN_TOKEN: ADMIN,
  PDP_ISSUER: ISSUER,
  PDP_AUDIENCE: AUDIENCE,
  PDP_JWKS_FILE: jwksFile,
  // The bodies must reach the handlers, not the rate limiter.
  PDP_RATE_LIMIT_ADMIN: '1000000',
  PDP_RATE_LIMIT_EVENTS: '1000000',
}

/** Signed tokens whose claims are hostile: the signature is good, so only the claim checks stand between them and the store. */
const tokens = await Promise.all(
  [
    { sub: '\ud800' },
    { sub: 'constructor', tenant: '__proto__' },
    { sub: 'carol', tenant: 'toString', roles: ['constructor'] },
    { sub: 'carol', roles: ['admin', '\udfff'] },
    { sub: 'carol', tenant: 'a\u0000b' },
    { sub: 'carol', jti: 'j\ud800' },
    { sub: 'carol', sid: '\ud834' },
    { sub: 'hasOwnProperty', sid: 'constructor', amr: ['pwd'], auth_time: nowSec - 60 },
  ].map((claims) => issuer.sign(claims, { nowMs: clock.now() })),
)
const token = fc.constantFrom(...tokens)

interface Case {
  method: 'GET' | 'POST' | 'DELETE'
  url: string
  body?: unknown
}

const post = (url: string, shape: fc.Arbitrary<unknown>) => hostile.body(shape).map((body): Case => ({ method: 'POST', url, body }))
const withToken = (shape: fc.Arbitrary<Record<string, unknown>>) =>
  fc.tuple(shape, fc.nat(5), token).map(([body, dice, tok]) => (dice === 0 ? { ...body, token: tok } : dice === 1 ? { ...withoutSubject(body), token: tok } : body))

function withoutSubject(body: Record<string, unknown>): Record<string, unknown> {
  const { subject: _subject, ...rest } = body
  return rest
}

const decideCases = fc.oneof(post('/decide', withToken(hostile.decideBody)), post('/decide/batch', withToken(hostile.batchBody)))
const controlPlaneCases = fc.oneof(
  post('/admin/revocations', hostile.revocationBody(nowSec)),
  post('/admin/grants', hostile.grantBody),
  post('/events', hostile.eventBody(nowSec)),
  fc.tuple(hostile.segment, hostile.segment, hostile.body(hostile.approveBody)).map(([id, gid, body]): Case => ({ method: 'POST', url: `/admin/grants/${id}/${gid}/approve`, body })),
  fc
    .tuple(
      fc.constantFrom(
        'GET /admin/subjects/:a/sessions',
        'DELETE /admin/subjects/:a/sessions',
        'DELETE /admin/subjects/:a/sessions/:b',
        'GET /admin/grants/:a',
        'DELETE /admin/grants/:a/:b',
        'GET /admin/subjects/:a/restrictions',
        'DELETE /admin/subjects/:a/restrictions/:b',
        'GET /admin/ips/:a',
        'DELETE /admin/ips/:a',
      ),
      hostile.segment,
      fc.oneof(hostile.segment, fc.constantFrom('locked', 'frozen', 'stepUp')),
    )
    .map(([route, a, b]): Case => {
      const [method, path] = route.split(' ') as [Case['method'], string]
      return { method, url: path.replace(':a', a).replace(':b', b) }
    }),
)

type Snapshot = () => Promise<string>

/**
 * The embedded store's contents: every owner's record (see src/store/memory-store.ts) without its recency element at
 * index 1 (reading is not a change). The clock stands still while fuzzing, so no key expires between two snapshots.
 */
function memorySnapshot(store: MemoryStateStore): Snapshot {
  const records = (store as unknown as { records: Map<string, unknown[]> }).records
  return async () => {
    const rows = [...records.values()].map((rec) => JSON.stringify(rec.map((slot, i) => (i === 1 ? null : slot instanceof Map || slot instanceof Set ? [...slot] : slot))))
    return JSON.stringify(rows.sort())
  }
}

/** Every key under the test's prefix with its value (the rate limiter's counters aside: they count every request). */
function redisSnapshot(client: Redis, prefix: string): Snapshot {
  return async () => {
    const keys = (await client.keys(`${prefix}*`)).filter((k) => !k.startsWith(`${prefix}ratelimit:`)).sort()
    const types = await keys.reduce((p, key) => p.type(key), client.pipeline()).exec()
    const reads = client.pipeline()
    keys.forEach((key, i) => {
      const type = types![i]![1]
      if (type === 'string') reads.get(key)
      else if (type === 'hash') reads.hgetall(key)
      else if (type === 'set') reads.smembers(key)
      else if (type === 'zset') reads.zrange(key, 0, -1, 'WITHSCORES')
      else reads.echo(String(type))
    })
    const values = await reads.exec()
    return JSON.stringify(
      keys.map((key, i) => {
        const value = values![i]![1]
        return [key, types![i]![1], Array.isArray(value) ? [...value].sort() : value && typeof value === 'object' ? Object.entries(value).sort() : value]
      }),
    )
  }
}

async function fuzz(t: Test, app: FastifyInstance, lines: unknown[], snapshot: Snapshot, cases: fc.Arbitrary<Case>, numRuns: number, seed: number) {
  let statuses: Record<number, number> = {}
  await fc.assert(
    fc.asyncProperty(cases, fc.nat(), async (c, pick) => {
      await app.responder.settled()
      // A decision's background writes may be held until the end of the event loop's turn (BatchOptions.background).
      await new Promise((resolve) => setImmediate(resolve))
      const before = await snapshot()
      const logged = lines.length
      const headers: Record<string, string> = { authorization: `Bearer ${ADMIN}` }
      const payload = c.body === undefined ? undefined : hostile.toJson(c.body, pick)
      if (payload !== undefined) headers['content-type'] = 'application/json'
      const res = await app.inject({ method: c.method, url: c.url, headers, ...(payload === undefined ? {} : { payload }) })
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
      const shown = `${c.method} ${c.url} ${(payload ?? '').slice(0, 400)} -> ${res.statusCode} ${res.body.slice(0, 200)}`
      if (res.statusCode >= 500) throw new Error(`5xx: ${shown}`)
      if (res.statusCode >= 400) {
        await app.responder.settled()
        if ((await snapshot()) !== before) throw new Error(`a ${res.statusCode} changed the store: ${shown}`)
        if (lines.length !== logged) throw new Error(`a ${res.statusCode} wrote ${lines.length - logged} audit line(s): ${shown}`)
        if (res.json().code === undefined) throw new Error(`a ${res.statusCode} outside the error catalogue: ${shown}`)
      }
    }),
    { seed, numRuns },
  )
  // The bodies must have been varied enough to be both accepted and refused.
  t.ok(Object.keys(statuses).some((s) => Number(s) < 300), `some answers were 2xx: ${JSON.stringify(statuses)}`)
  t.ok(Object.keys(statuses).some((s) => Number(s) >= 400), `some answers were 4xx: ${JSON.stringify(statuses)}`)
  statuses = {}
}

t.test('hostile bodies on the embedded store: no 5xx, and a 4xx changes nothing', async (t) => {
  const capture = auditCapture()
  const app = await build(t, { env, now: clock.now, auditStream: capture.stream })
  t.ok(app.store instanceof MemoryStateStore)
  const snapshot = memorySnapshot(app.store as MemoryStateStore)
  await t.test('/decide and /decide/batch', (t) => fuzz(t, app, capture.lines, snapshot, decideCases, 300, 14))
  await t.test('/admin/* and /events', (t) => fuzz(t, app, capture.lines, snapshot, controlPlaneCases, 300, 1414))
})

const redis = await redisTarget()
t.test('hostile bodies on Redis: no 5xx from /decide, and a 4xx changes nothing', { skip: redis.skip }, async (t) => {
  const prefix = isolatedPrefix(t, redis.url!)
  const capture = auditCapture()
  const app = await build(t, {
    env: { ...env, REDIS_URL: redis.url!, PDP_REDIS_PREFIX: prefix, PDP_STORE_TIMEOUT_MS: '5000' },
    now: clock.now,
    auditStream: capture.stream,
  })
  t.ok(app.store instanceof RedisStateStore)
  const snapshot = redisSnapshot((app.store as RedisStateStore).client as Redis, prefix)
  await fuzz(t, app, capture.lines, snapshot, decideCases, 100, 140)
})
