import t from 'tap'
import { canonicalJson, inputKey } from '../../src/client/cache-key.js'
import { createPdpClient, PDP_UNAVAILABLE, type ClientDecision } from '../../src/client/index.js'
import { manualClock } from '../helpers/build.js'
import { livePdp } from '../helpers/live-pdp.js'
import { LIVE_TIMEOUT_MS, questions, refusedUrl, silentServer } from './fixtures.js'

const pdpClock = manualClock()
const q = questions(pdpClock.now())
const items = {
  allow: { action: q.allow.action, resource: q.allow.resource },
  deny: { action: q.deny.action, resource: q.deny.resource },
}

const decideCalls = (pdp: { requests: { url: string }[] }) => pdp.requests.filter((r) => r.url.startsWith('/decide')).length

t.test('verdicts from a running PDP arrive typed and unchanged', async (t) => {
  const pdp = await livePdp(t, { now: pdpClock.now })
  const client = createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS })

  const allow = await client.decide(q.allow)
  t.match(allow, { decision: 'allow', reasons: ['policy_allow'], policyVersion: /^[0-9a-f]{16}$/, risk: { score: 0 } })
  t.equal(allow.failure, undefined)

  const deny = await client.decide(q.deny)
  t.match(deny, { decision: 'deny', reasons: ['no_matching_policy'] })
  t.equal(deny.failure, undefined, 'a policy deny is the PDP\'s answer, not a failure')

  const stepUp = await client.decide(q.stepUp)
  t.equal(stepUp.decision, 'step_up')
  t.match(stepUp.stepUp, { level: String, methods: Array, maxAge: Number, acrValues: Array })

  const token = await client.decide(q.badToken)
  t.match(token, { decision: 'deny', reasons: ['token_invalid'] })
  t.same(
    pdp.requests.map((r) => [r.method, r.url]),
    Array(4).fill(['POST', '/decide']),
  )
})

t.test('a batch answers one verdict per item, in order, in one request', async (t) => {
  const pdp = await livePdp(t, { now: pdpClock.now })
  const client = createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS })
  const { subject, context } = q.allow
  const decisions = await client.decideBatch({ subject, context }, [items.allow, items.deny])
  t.same(
    decisions.map((d) => [d.decision, d.reasons[0]]),
    [
      ['allow', 'policy_allow'],
      ['deny', 'no_matching_policy'],
    ],
  )
  t.same(
    pdp.requests.map((r) => r.url),
    ['/decide/batch'],
  )
  t.same(await client.decideBatch({ subject }, []), [], 'no items: no question, no request')
  t.equal(pdp.requests.length, 1)
})

t.test('the allow-cache answers repeated questions without asking the PDP', async (t) => {
  const pdp = await livePdp(t, { now: pdpClock.now })
  const clock = manualClock()
  const client = createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS, cache: { ttlMs: 2_000, max: 100 }, now: clock.now })

  const first = await client.decide(q.allow)
  const second = await client.decide(q.allow)
  t.equal(decideCalls(pdp), 1, 'the second call did not reach the PDP')
  t.equal(second.decisionId, first.decisionId, 'it is the remembered decision')

  const reordered = { context: q.allow.context, resource: q.allow.resource, action: q.allow.action, subject: { tenant: 'acme', id: 'carol' } }
  await client.decide(reordered)
  t.equal(decideCalls(pdp), 1, 'the key does not depend on property order')

  second.reasons.push('policy_deny')
  t.same((await client.decide(q.allow)).reasons, ['policy_allow'], 'changing a returned decision does not change the cache')

  await client.decide({ ...q.allow, context: { ...q.allow.context, userAgent: 'other' } })
  t.equal(decideCalls(pdp), 2, 'any difference in the input is another question')

  clock.advance(1_999)
  await client.decide(q.allow)
  t.equal(decideCalls(pdp), 2, 'still fresh just before the TTL')
  clock.advance(1)
  await client.decide(q.allow)
  t.equal(decideCalls(pdp), 3, 'expired at the TTL: asked again')
})

t.test('the cache never stores deny or step_up', async (t) => {
  const pdp = await livePdp(t, { now: pdpClock.now })
  const client = createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS, cache: { ttlMs: 60_000, max: 100 }, now: manualClock().now })
  for (const input of [q.deny, q.deny, q.stepUp, q.stepUp, q.badToken, q.badToken]) await client.decide(input)
  t.equal(decideCalls(pdp), 6, 'every refusal was asked again')
})

t.test('the cache is bounded: the least recently used entry goes first', async (t) => {
  const pdp = await livePdp(t, { now: pdpClock.now })
  const client = createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS, cache: { ttlMs: 60_000, max: 2 }, now: manualClock().now })
  const asking = (agent: string) => ({ ...q.allow, context: { ...q.allow.context, userAgent: agent } })
  await client.decide(asking('a'))
  await client.decide(asking('b'))
  await client.decide(asking('a'))
  await client.decide(asking('c'))
  t.equal(decideCalls(pdp), 3)
  await client.decide(asking('a'))
  t.equal(decideCalls(pdp), 3, '"a" was used recently and stayed')
  await client.decide(asking('b'))
  t.equal(decideCalls(pdp), 4, '"b" was evicted')
})

t.test('single and batch questions share the cache; a batch sends only what it misses', async (t) => {
  const pdp = await livePdp(t, { now: pdpClock.now })
  const client = createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS, cache: { ttlMs: 60_000, max: 100 }, now: manualClock().now })
  const { subject, context } = q.allow
  const create = { action: q.allow.action, resource: q.allow.resource }
  const readOwn = { action: 'read', resource: { type: 'documents', id: 'd1', attributes: { owner: 'carol' } } }

  const single = await client.decide(q.allow)
  const batch = await client.decideBatch({ subject, context }, [readOwn, create])
  t.same(
    batch.map((d) => d.decision),
    ['allow', 'allow'],
  )
  t.equal(batch[1]!.decisionId, single.decisionId, 'the cached single answer filled its place in the batch')
  t.equal(pdp.requests.length, 2)
  t.same((pdp.requests[1]!.body as { items: unknown[] }).items, [readOwn], 'the batch request carried only the uncached item')

  const again = await client.decideBatch({ subject, context }, [create, readOwn])
  t.same(
    again.map((d) => d.decisionId),
    [single.decisionId, batch[0]!.decisionId],
    'both now come from the cache, in the order asked',
  )
  t.equal(pdp.requests.length, 2, 'no request at all')
})

t.test('a PDP that does not answer in time is a deny, after the client\'s own timeout', async (t) => {
  // The server never answers, so any answer at all comes from the client's own timeout: no wall clock to race.
  const url = await silentServer(t)
  const client = createPdpClient({ baseUrl: url, timeoutMs: 50 })
  const decision = await client.decide(q.allow)
  t.match(decision, { decision: 'deny', reasons: [PDP_UNAVAILABLE], policyVersion: '', failure: { kind: 'timeout', message: /within 50 ms/ } })
  t.match(decision.decisionId, /^[0-9a-f]{8}-[0-9a-f]{4}-7/, 'a UUIDv7 of its own, to correlate logs')

  const batch = await client.decideBatch({ subject: q.allow.subject }, [items.allow, items.deny])
  t.same(
    batch.map((d) => [d.decision, d.failure?.kind]),
    [
      ['deny', 'timeout'],
      ['deny', 'timeout'],
    ],
  )
})

t.test('the timeout holds even when a supplied fetch ignores its abort signal', async (t) => {
  let signal: AbortSignal | undefined
  const client = createPdpClient({
    baseUrl: 'http://pdp.invalid',
    timeoutMs: 20,
    fetch: (_url, init) => {
      signal = init?.signal ?? undefined
      return new Promise<Response>(() => {})
    },
  })
  t.match(await client.decide(q.allow), { decision: 'deny', failure: { kind: 'timeout' } })
  t.equal(signal?.aborted, true, 'the request was told to stop')
})

t.test('a refused connection is a deny naming the system error', async (t) => {
  const client = createPdpClient({ baseUrl: await refusedUrl(), timeoutMs: 2_000 })
  const decision = await client.decide(q.allow)
  t.match(decision, { decision: 'deny', reasons: [PDP_UNAVAILABLE], failure: { kind: 'network', message: 'network error (ECONNREFUSED)' } })
})

t.test('answers that are not decisions are denies', async (t) => {
  const answering = (status: number, body: string) =>
    createPdpClient({ baseUrl: 'http://pdp.invalid', fetch: async () => new Response(body, { status, headers: { 'content-type': 'application/json' } }) })
  const cases: [string, number, string, string][] = [
    ['not JSON', 200, '<html>', 'malformed'],
    ['an unknown verdict', 200, JSON.stringify({ decision: 'maybe', decisionId: 'x', reasons: [], policyVersion: 'v' }), 'malformed'],
    ['a step-up that does not say how', 200, JSON.stringify({ decision: 'step_up', decisionId: 'x', reasons: ['step_up_required'], policyVersion: 'v' }), 'malformed'],
    ['reasons that are not strings', 200, JSON.stringify({ decision: 'allow', decisionId: 'x', reasons: [1], policyVersion: 'v' }), 'malformed'],
    ['a server error', 503, 'unavailable', 'status'],
    ['a redirect', 302, '', 'status'],
  ]
  for (const [name, status, body, kind] of cases) {
    t.match(await answering(status, body).decide(q.allow), { decision: 'deny', reasons: [PDP_UNAVAILABLE], failure: { kind } }, name)
  }
  const short = await answering(200, JSON.stringify({ decisions: [{ decision: 'allow', decisionId: 'x', reasons: [], policyVersion: 'v' }] })).decideBatch(
    { subject: q.allow.subject },
    [items.allow, items.deny],
  )
  t.same(
    short.map((d) => [d.decision, d.failure?.kind]),
    [
      ['deny', 'malformed'],
      ['deny', 'malformed'],
    ],
    'a batch answer with the wrong number of decisions is not trusted for any item',
  )
})

t.test('input the PDP rejects is a deny carrying the PDP\'s explanation', async (t) => {
  const pdp = await livePdp(t, { now: pdpClock.now })
  const client = createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS })
  const decision = await client.decide({ ...q.allow, subject: { id: '' } })
  t.match(decision, { decision: 'deny', failure: { kind: 'status', status: 400, message: /^PDP answered 400 \(PDP_ERR_VALIDATION: \/subject\/id / } })

  const circular: Record<string, unknown> = {}
  circular.self = circular
  const unsendable = await client.decide({ ...q.allow, resource: { type: 'documents', attributes: circular } })
  t.match(unsendable, { decision: 'deny', failure: { kind: 'input' } })
  t.equal(pdp.requests.length, 1, 'unsendable input never left the client')
})

t.test('the caller credential is sent as a bearer token and never appears in a decision or failure', async (t) => {
  const secret = 'caller-secret-' + 'x'.repeat(40)
  const pdp = await livePdp(t, { now: pdpClock.now, env: { PDP_DECIDE_AUTH: 'token', PDP_ADMIN_TOKEN: secret } })
  const leaks = (d: ClientDecision | ClientDecision[]) => JSON.stringify(d).includes('caller-secret') || JSON.stringify(d).includes('wrong-secret')

  const allowed = await createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS, token: secret }).decide(q.allow)
  t.match(allowed, { decision: 'allow' })
  t.equal(pdp.requests[0]!.authorization, `Bearer ${secret}`)

  const rotating = createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS, token: async () => secret })
  t.match(await rotating.decideBatch({ subject: q.allow.subject, context: q.allow.context }, [items.allow]), [{ decision: 'allow' }])

  const outcomes = [
    await createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS }).decide(q.allow),
    await createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS, token: 'wrong-secret-' + 'y'.repeat(40) }).decide(q.allow),
    await createPdpClient({ baseUrl: await refusedUrl(), token: secret }).decide(q.allow),
    await createPdpClient({ baseUrl: await silentServer(t), token: secret, timeoutMs: 20 }).decide(q.allow),
    await createPdpClient({
      baseUrl: pdp.url,
      token: () => {
        throw new Error(`vault said no to ${secret}`)
      },
    }).decide(q.allow),
  ]
  t.same(
    outcomes.map((d) => [d.decision, d.failure?.kind, d.failure?.status]),
    [
      ['deny', 'status', 401],
      ['deny', 'status', 401],
      ['deny', 'network', undefined],
      ['deny', 'timeout', undefined],
      ['deny', 'credential', undefined],
    ],
  )
  t.notOk(outcomes.some(leaks), 'no credential in any decision or failure message')
})

t.test('options are checked when the client is made, not on the request path', async (t) => {
  t.throws(() => createPdpClient({ baseUrl: 'ftp://pdp' }), /http or https/)
  try {
    createPdpClient({ baseUrl: 'http://svc:hunter2@pdp' })
    t.fail('a URL with credentials was accepted')
  } catch (error) {
    t.match((error as Error).message, /must not carry credentials/)
    t.notMatch((error as Error).message, /hunter2/, 'without repeating them')
  }
  t.throws(() => createPdpClient({ baseUrl: 'http://pdp', timeoutMs: 0 }), /timeoutMs/)
  t.throws(() => createPdpClient({ baseUrl: 'http://pdp', cache: { ttlMs: 1000, max: 0 } }), /cache.max/)
  t.throws(() => createPdpClient({ baseUrl: 'http://pdp', cache: { ttlMs: -1, max: 10 } }), /cache.ttlMs/)

  const urls: string[] = []
  const client = createPdpClient({
    baseUrl: 'http://pdp.internal/authz/?x=1',
    fetch: async (url) => {
      urls.push(String(url))
      return new Response('{}', { status: 500 })
    },
  })
  await client.decide(q.allow)
  await client.decideBatch({ subject: q.allow.subject }, [items.allow])
  t.same(urls, ['http://pdp.internal/authz/decide', 'http://pdp.internal/authz/decide/batch'], 'a path prefix is kept, the query dropped')
})

t.test('cache keys: stable across property order, sensitive to everything else', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: undefined } }), '{"a":{"d":[2,1]},"b":1}')
  t.equal(inputKey({ a: 1, b: { c: 2, d: 3 } }), inputKey({ b: { d: 3, c: 2 }, a: 1 }))
  t.not(inputKey({ amr: ['pwd', 'otp'] }), inputKey({ amr: ['otp', 'pwd'] }), 'array order is meaning')
  t.not(inputKey(JSON.parse('{"__proto__":{"x":1}}')), inputKey({}), 'a __proto__ member is data, not lost')
  t.notOk(inputKey({ token: 'eyJ.secret.sig' }).includes('secret'), 'the key is a digest')
})
