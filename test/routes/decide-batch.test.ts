import t from 'tap'
import { auditCapture, build, manualClock, trustedContext } from '../helpers/build.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

const clock = manualClock()

const items = [
  { action: 'read', resource: { type: 'documents', id: 'd1', attributes: { owner: 'carol' } } },
  { action: 'read', resource: { type: 'documents', id: 'd2', attributes: { owner: 'someone-else' } } },
  { action: 'create', resource: { type: 'documents' } },
  { action: 'delete', resource: { type: 'users', id: 'bob' } },
]

t.test('one verdict per item, in order, each with its own decision id and log line', async (t) => {
  const capture = auditCapture()
  const app = await build(t, { now: clock.now, auditStream: capture.stream })
  const res = await app.inject({
    method: 'POST',
    url: '/decide/batch',
    headers: { 'x-request-id': 'ui-buttons-1' },
    payload: { subject: { id: 'carol', tenant: 'acme' }, items, context: trustedContext(clock.now()) },
  })
  t.equal(res.statusCode, 200)
  const { decisions } = res.json() as { decisions: { decision: string; reasons: string[]; decisionId: string; risk?: { score: number } }[] }
  t.same(
    decisions.map((d) => [d.decision, d.reasons[0]]),
    [
      ['allow', 'policy_allow'],
      ['deny', 'no_matching_policy'],
      ['allow', 'policy_allow'],
      ['deny', 'no_matching_policy'],
    ],
  )
  t.equal(new Set(decisions.map((d) => d.decisionId)).size, items.length, 'decision ids are distinct')
  const logged = capture.lines.filter((l) => l.type === 'decision')
  t.equal(logged.length, items.length, 'one decision-log line per item')
  t.same(
    logged.map((l) => [l.source, l.request_id, (l.resource as { id?: string }).id, l.verdict]),
    [
      ['batch', 'ui-buttons-1', 'd1', 'allow'],
      ['batch', 'ui-buttons-1', 'd2', 'deny'],
      ['batch', 'ui-buttons-1', undefined, 'allow'],
      ['batch', 'ui-buttons-1', 'bob', 'deny'],
    ],
  )
})

t.test('risk is assessed once for the batch: every item sees the same signals', async (t) => {
  const app = await build(t, { now: clock.now })
  const context = trustedContext(clock.now())
  const batch = await app.inject({ method: 'POST', url: '/decide/batch', payload: { subject: { id: 'alice', tenant: 'acme' }, items, context } })
  const allowed = (batch.json() as { decisions: { decision: string; risk?: { signals: { name: string; value: unknown }[] } }[] }).decisions.filter(
    (d) => d.decision === 'allow',
  )
  t.equal(allowed.length, items.length, 'an admin may do all four')
  const behaviours = allowed.map((d) => JSON.stringify(d.risk?.signals.find((s) => s.name === 'behaviour')?.value))
  t.equal(new Set(behaviours).size, 1, 'every item sees the same behaviour assessment')
})

t.test('sensitivity applies per item', async (t) => {
  const app = await build(t, { now: clock.now })
  const res = await app.inject({
    method: 'POST',
    url: '/decide/batch',
    payload: {
      subject: { id: 'alice', tenant: 'acme' },
      items: [
        { action: 'read', resource: { type: 'documents', id: 'd1' } },
        { action: 'update', resource: { type: 'system.config' } },
      ],
      context: { ...trustedContext(clock.now()), session: { id: 's-1', authTime: Math.floor(clock.now() / 1000) - 60, amr: ['pwd'] } },
    },
  })
  t.equal(res.statusCode, 200)
  const [read, config] = (res.json() as { decisions: { decision: string; risk: { sensitivity: string } }[] }).decisions
  t.not(read!.risk.sensitivity, config!.risk.sensitivity, 'each item has its own sensitivity')
  t.equal(config!.risk.sensitivity, 'critical')
})

t.test('a token is verified once and names the subject of every item', async (t) => {
  const issuer = await createIssuer()
  const env = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile() }
  const app = await build(t, { env, now: clock.now })
  const nowS = Math.floor(clock.now() / 1000)
  const token = await issuer.sign({ sub: 'carol', tenant: 'acme', auth_time: nowS - 60, amr: ['pwd', 'otp'] }, { nowMs: clock.now() })
  const res = await app.inject({
    method: 'POST',
    url: '/decide/batch',
    payload: { token, items: items.slice(0, 2), context: { device: trustedContext(clock.now()).device } },
  })
  t.equal(res.statusCode, 200)
  const { decisions } = res.json() as { decisions: { decision: string; subject: { id: string } }[] }
  t.same(
    decisions.map((d) => [d.decision, d.subject.id]),
    [
      ['allow', 'carol'],
      ['deny', 'carol'],
    ],
  )
  const forged = await app.inject({ method: 'POST', url: '/decide/batch', payload: { token: `${token.slice(0, -4)}AAAA`, items: items.slice(0, 2) } })
  t.same(
    (forged.json() as { decisions: { decision: string; reasons: string[] }[] }).decisions.map((d) => [d.decision, d.reasons[0]]),
    [
      ['deny', 'token_invalid'],
      ['deny', 'token_invalid'],
    ],
  )
})

t.test('bad batches are 400s that name the problem', async (t) => {
  const app = await build(t, { env: { PDP_BATCH_MAX: '3' }, now: clock.now })
  const subject = { id: 'carol', tenant: 'acme' }
  const cases: [string, unknown, string][] = [
    ['more items than PDP_BATCH_MAX', { subject, items }, '/items'],
    ['no items', { subject, items: [] }, '/items'],
    ['items missing', { subject }, 'items'],
    ['an item without an action', { subject, items: [{ resource: { type: 'documents' } }] }, 'action'],
    ['both token and subject', { subject, token: 'x.y.z', items: items.slice(0, 1) }, '/token'],
    ['neither token nor subject', { items: items.slice(0, 1) }, '/subject'],
    ['a bad IP', { subject, items: items.slice(0, 1), context: { ip: 'not-an-ip' } }, '/context/ip'],
    ['an unknown field in an item', { subject, items: [{ ...items[0], extra: 1 }] }, 'extra'],
  ]
  for (const [name, payload, mentions] of cases) {
    const res = await app.inject({ method: 'POST', url: '/decide/batch', payload: payload as object })
    t.equal(res.statusCode, 400, name)
    t.match(res.json(), { code: 'PDP_ERR_VALIDATION' }, name)
    t.match(JSON.stringify(res.json()), mentions, `${name}: names ${mentions}`)
  }
  const ok = await app.inject({ method: 'POST', url: '/decide/batch', payload: { subject, items: items.slice(0, 3) } })
  t.equal(ok.statusCode, 200, 'exactly PDP_BATCH_MAX items are fine')
})

t.test('PDP_DECIDE_AUTH=token: /decide and /decide/batch need a pdp:decide credential', async (t) => {
  const adminToken = 'a'.repeat(40)
  const app = await build(t, { env: { PDP_DECIDE_AUTH: 'token', PDP_ADMIN_TOKEN: adminToken }, now: clock.now })
  const payload = { subject: { id: 'carol', tenant: 'acme' }, action: 'create', resource: { type: 'documents' }, context: trustedContext(clock.now()) }
  const bare = await app.inject({ method: 'POST', url: '/decide', payload })
  t.equal(bare.statusCode, 401)
  t.match(bare.json(), { code: 'PDP_ERR_UNAUTHORIZED' })
  const batch = await app.inject({ method: 'POST', url: '/decide/batch', payload: { subject: payload.subject, items } })
  t.equal(batch.statusCode, 401)
  const wrong = await app.inject({ method: 'POST', url: '/decide', payload, headers: { authorization: `Bearer ${'b'.repeat(40)}` } })
  t.equal(wrong.statusCode, 401)
  const authorised = await app.inject({ method: 'POST', url: '/decide', payload, headers: { authorization: `Bearer ${adminToken}` } })
  t.equal(authorised.statusCode, 200)
  t.match(authorised.json(), { decision: 'allow' })
})
