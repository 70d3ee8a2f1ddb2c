import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createTokenVerifier, TokenVerifierConfigError } from '../../src/identity/token-verifier.js'
import { AUDIENCE, ISSUER, createIssuer, tokenFailures } from '../helpers/tokens.js'

const issuer = await createIssuer()
const NOW = Date.parse('2026-03-01T12:00:00Z')
let clock = NOW
const verifier = await createTokenVerifier({ jwks: issuer.jwks, issuer: ISSUER, audience: AUDIENCE, now: () => clock, rolesClaim: 'realm_access.roles' })

t.beforeEach(() => {
  clock = NOW
})

t.test('a valid token yields the subject, roles at a nested path, tenant and session facts', async (t) => {
  const token = await issuer.sign(
    { sub: 'bob', realm_access: { roles: ['manager'] }, tenant: 'acme', amr: ['pwd', 'hwk'], acr: 'aal3', auth_time: NOW / 1000 - 30, sid: 's-9' },
    { nowMs: NOW },
  )
  const result = await verifier.verify(token)
  t.ok(result.ok)
  if (!result.ok) return
  t.same(result.token.subject, { id: 'bob', roles: ['manager'], tenant: 'acme' })
  t.same(result.token.session, { id: 's-9', authTime: NOW / 1000 - 30, amr: ['pwd', 'hwk'], acr: 'aal3' })
  t.equal(result.token.issuedAt, NOW / 1000)
  t.type(result.token.jti, 'string')
})

t.test('every failure class is refused, with a reason and never the token', async (t) => {
  for (const [name, token, reason] of await tokenFailures(issuer, NOW)) {
    const result = await verifier.verify(token)
    t.equal(result.ok, false, `${name}: refused`)
    if (result.ok) continue
    t.equal(result.reason, reason, `${name}: reason`)
    t.notMatch(result.detail, token.slice(0, 40) || '\u0000never', `${name}: detail never repeats the token`)
  }
})

t.test('clock tolerance at the edges', async (t) => {
  const token = await issuer.sign({}, { nowMs: NOW, lifetimeSec: 300 })
  clock = NOW + 300_000 + 29_000
  t.ok((await verifier.verify(token)).ok, 'within 30 s after exp')
  const fresh = await issuer.sign({}, { nowMs: NOW, lifetimeSec: 300 })
  clock = NOW + 300_000 + 31_000
  t.match(await verifier.verify(fresh), { ok: false, reason: 'token_expired' })
})

t.test('cached results still honour expiry', async (t) => {
  const token = await issuer.sign({}, { nowMs: NOW, lifetimeSec: 120 })
  t.ok((await verifier.verify(token)).ok)
  t.ok((await verifier.verify(token)).ok, 'from the cache')
  clock = NOW + 200_000
  t.match(await verifier.verify(token), { ok: false, reason: 'token_expired' })
})

t.test('a JWKS file is read at creation', async (t) => {
  const file = await issuer.jwksFile()
  const fromFile = await createTokenVerifier({ jwksFile: file, issuer: ISSUER, audience: AUDIENCE, now: () => NOW })
  t.ok((await fromFile.verify(await issuer.sign({}, { nowMs: NOW }))).ok)
  await t.rejects(createTokenVerifier({ jwksFile: `${file}.missing`, issuer: ISSUER, audience: AUDIENCE }), TokenVerifierConfigError)
})

t.test('none and HMAC are refused in configuration', async (t) => {
  await t.rejects(createTokenVerifier({ jwks: issuer.jwks, issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256', 'HS256'] }), { message: /HS256 are never accepted/ })
  await t.rejects(createTokenVerifier({ jwks: issuer.jwks, issuer: ISSUER, audience: AUDIENCE, algorithms: ['none'] }), TokenVerifierConfigError)
  await t.rejects(createTokenVerifier({ jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, jwksFile: 'x', issuer: ISSUER, audience: AUDIENCE }), TokenVerifierConfigError)
})

t.test('a remote JWKS is fetched, cached, and refetched at most once per cool-down; header URLs are never fetched', async (t) => {
  const rotated = await createIssuer('k2')
  let served = issuer.jwks
  const hits: string[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    hits.push(req.url ?? '')
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(req.url === '/jwks' ? served : { keys: [rotated.publicJwk] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const remote = await createTokenVerifier({ jwksUrl: `${base}/jwks`, issuer: ISSUER, audience: AUDIENCE, now: () => Date.now(), jwksCooldownMs: 60_000 })

  t.ok((await remote.verify(await issuer.sign())).ok)
  t.ok((await remote.verify(await issuer.sign())).ok)
  t.same(hits, ['/jwks'], 'fetched once, then cached')

  const withJku = await rotated.sign({}, { header: { jku: `${base}/evil`, x5u: `${base}/evil-x5u` } })
  t.equal((await remote.verify(withJku)).ok, false)
  t.notOk(hits.some((h) => h.startsWith('/evil')), 'jku and x5u are never fetched')

  served = { keys: [issuer.publicJwk, rotated.publicJwk] }
  const unknownKid = await rotated.sign()
  t.equal((await remote.verify(unknownKid)).ok, false, 'within the cool-down the new key is not fetched')
  t.equal(hits.filter((h) => h === '/jwks').length, 1)
})
