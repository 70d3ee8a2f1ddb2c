import t, { type Test } from 'tap'
import { createServer, type ServerResponse } from 'node:http'
import { createTokenVerifier, type TokenVerifierOptions } from '../../src/identity/token-verifier.js'
import { build, manualClock } from '../helpers/build.js'
import { deadline, manualTimeouts, until } from '../helpers/deadline.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'

const issuer = await createIssuer()

type Mode = 'ok' | 'hang' | '404' | 'huge' | 'declared-huge'

/**
 * A real JWKS endpoint whose behaviour the test switches; it counts fetches and holds requests when hanging
 * (then calls `onHold`, where a test fires the fetch's time-out).
 */
async function jwksServer(t: Test, mode: Mode, onHold?: () => void) {
  const state = { mode, fetches: 0, holding: 0, hugeSent: 0, hugeFinished: false, hugeClosed: false }
  const held = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    state.fetches++
    switch (state.mode) {
      case 'ok':
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(issuer.jwks))
        return
      case '404':
        res.statusCode = 404
        res.end('not here')
        return
      case 'hang':
        state.holding++
        held.add(res)
        res.on('close', () => {
          state.holding--
          held.delete(res)
        })
        onHold?.()
        return
      case 'declared-huge':
        res.setHeader('content-length', String(60 * 1024 * 1024))
        res.write('{"keys":[')
        held.add(res)
        res.on('close', () => held.delete(res))
        return
      case 'huge': {
        // 60 MB of a JSON array, streamed as fast as the client reads it.
        const total = 60 * 1024 * 1024
        const chunk = Buffer.alloc(64 * 1024, 0x20)
        res.setHeader('content-type', 'application/json')
        res.write('{"keys":[')
        res.on('close', () => (state.hugeClosed = true))
        const pump = () => {
          while (state.hugeSent < total && !res.destroyed) {
            state.hugeSent += chunk.length
            if (!res.write(chunk)) return res.once('drain', pump)
          }
          if (!res.destroyed) res.end(']}', () => (state.hugeFinished = true))
        }
        pump()
        return
      }
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  /** Ends the held requests with a 503 (the endpoint recovers from its hang into an error). */
  const release = () => {
    for (const res of held) {
      res.statusCode = 503
      res.end()
    }
  }
  t.teardown(() => {
    for (const res of held) res.destroy()
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  return { state, release, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks` }
}

async function verifierFor(url: string, clock: ReturnType<typeof manualClock>, extra: Partial<TokenVerifierOptions> = {}) {
  return createTokenVerifier({
    jwksUrl: url,
    issuer: ISSUER,
    audience: AUDIENCE,
    now: clock.now,
    // Far above any fetch from a live endpoint on a loaded machine; time-outs under test are fired by the test.
    jwksTimeoutMs: deadline(60_000),
    jwksFailureBackoffMs: 60_000,
    jwksCooldownMs: 30_000,
    jwksCacheMaxAgeMs: 600_000,
    ...extra,
  })
}

/** A new token per call, so that the verified-token cache never answers instead of the key set. */
const freshToken = (clock: ReturnType<typeof manualClock>) => issuer.sign({}, { nowMs: clock.now() })

t.test('a hanging JWKS: one fetch times out, then decisions fail at once until the back-off ends', async (t) => {
  const clock = manualClock()
  const timeouts = manualTimeouts(t)
  const jwks = await jwksServer(t, 'hang', () => timeouts.expire())
  const verifier = await verifierFor(jwks.url, clock)
  t.match(await verifier.verify(await freshToken(clock)), { ok: false, reason: 'token_invalid' }, 'the first decision waits for the fetch, bounded by its time-out')
  t.equal(jwks.state.fetches, 1)
  for (let i = 0; i < 5; i++) t.match(await verifier.verify(await freshToken(clock)), { ok: false, reason: 'token_invalid', detail: /ERR_JWKS_UNAVAILABLE/ })
  t.equal(jwks.state.fetches, 1, 'no decision during the back-off fetched (or waited for a fetch)')
  clock.advance(59_000)
  await verifier.verify(await freshToken(clock))
  t.equal(jwks.state.fetches, 1, 'still backing off')
  jwks.state.mode = 'ok'
  clock.advance(1_000)
  t.match(await verifier.verify(await freshToken(clock)), { ok: true }, 'after the back-off the next decision fetches again')
  t.equal(jwks.state.fetches, 2)
})

t.test('a JWKS answering 404 is not asked again on every decision', async (t) => {
  const clock = manualClock()
  const jwks = await jwksServer(t, '404')
  const verifier = await verifierFor(jwks.url, clock)
  for (let i = 0; i < 10; i++) {
    t.match(await verifier.verify(await freshToken(clock)), { ok: false, reason: 'token_invalid' })
    clock.advance(1_000)
  }
  t.equal(jwks.state.fetches, 1, 'ten decisions over 10 s of a 60 s back-off: one fetch')
  clock.advance(50_000)
  await verifier.verify(await freshToken(clock))
  t.equal(jwks.state.fetches, 2)
})

t.test('a huge JWKS body is cut off at the cap, not read whole', async (t) => {
  const clock = manualClock()
  const jwks = await jwksServer(t, 'huge')
  const problems: string[] = []
  // verifierFor's time-out is far longer than reading 60 MB takes here, so that only the cap can end the fetch.
  const verifier = await verifierFor(jwks.url, clock, { jwksMaxBytes: 64 * 1024, onJwksError: (m) => problems.push(m) })
  t.match(await verifier.verify(await freshToken(clock)), { ok: false, reason: 'token_invalid' })
  t.match(problems, [/larger than 65536 bytes/], 'the fetch ended at the cap')
  // Once the server saw the connection close: a body read whole would have finished the response first.
  await until(() => jwks.state.hugeClosed, 'the server to see the connection closed')
  t.notOk(jwks.state.hugeFinished, 'the client closed the connection before the 60 MB were sent')
  t.ok(jwks.state.hugeSent < 60 * 1024 * 1024, `sent ${jwks.state.hugeSent} bytes (socket buffers included)`)

  const declared = await jwksServer(t, 'declared-huge')
  const other = await verifierFor(declared.url, clock, { jwksMaxBytes: 64 * 1024, onJwksError: (m) => problems.push(m) })
  t.match(await other.verify(await freshToken(clock)), { ok: false, reason: 'token_invalid' })
  t.match(problems[1], /larger than 65536 bytes/, 'a Content-Length over the cap is refused before reading')
  for (let i = 0; i < 3; i++) await other.verify(await freshToken(clock))
  t.equal(declared.state.fetches, 1, 'and backed off like any failure')
})

t.test('with keys already fetched, decisions never wait for a refresh: the last good keys answer', async (t) => {
  const clock = manualClock()
  const jwks = await jwksServer(t, 'ok')
  const problems: string[] = []
  // The server, not the time-out, ends the held refresh; the time-out only keeps it from holding forever.
  const verifier = await verifierFor(jwks.url, clock, { jwksCacheMaxAgeMs: 60_000, onJwksError: (m) => problems.push(m) })
  t.match(await verifier.verify(await freshToken(clock)), { ok: true })
  t.equal(jwks.state.fetches, 1)

  jwks.state.mode = 'hang'
  clock.advance(61_000)
  t.match(await verifier.verify(await freshToken(clock)), { ok: true }, 'keys past their age still verify, and start a refresh')
  await until(() => jwks.state.holding === 1, 'the refresh to reach the JWKS server')
  t.match(await verifier.verify(await freshToken(clock)), { ok: true }, 'a decision while the refresh hangs uses the last good keys')
  t.equal(jwks.state.holding, 1, 'it completed while the JWKS server was still holding the refresh')
  t.equal(jwks.state.fetches, 2, 'one refresh at a time')

  jwks.release()
  await until(() => problems.length === 1, 'the refresh to fail')
  t.match(problems[0], /answered 503/)
  t.match(await verifier.verify(await freshToken(clock)), { ok: true }, 'after a failed refresh, the last good keys still answer')
  const rotated = await createIssuer('k2')
  t.match(await verifier.verify(await rotated.sign({}, { nowMs: clock.now() })), { ok: false, reason: 'token_invalid' })
  t.equal(jwks.state.fetches, 2, 'nothing is fetched during the back-off, not even for an unknown kid')

  jwks.state.mode = 'ok'
  clock.advance(60_000)
  t.match(await verifier.verify(await freshToken(clock)), { ok: true })
  await until(() => jwks.state.fetches === 3, 'the refresh after the back-off')
})

t.test('through POST /decide: a hanging PDP_JWKS_URL is fetched once per back-off, not once per decision', async (t) => {
  const clock = manualClock()
  const timeouts = manualTimeouts(t)
  const jwks = await jwksServer(t, 'hang', () => timeouts.expire())
  const app = await build(t, {
    now: clock.now,
    env: { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_URL: jwks.url, PDP_JWKS_TIMEOUT_MS: '300', PDP_JWKS_FAILURE_BACKOFF_MS: '30000' },
  })
  const decide = async () =>
    (
      await app.inject({
        method: 'POST',
        url: '/decide',
        payload: { token: await freshToken(clock), action: 'read', resource: { type: 'documents', attributes: { owner: 'carol' } } },
      })
    ).json()
  for (let i = 0; i < 4; i++) t.match(await decide(), { decision: 'deny', reasons: ['token_invalid'] })
  t.equal(jwks.state.fetches, 1)
  clock.advance(30_000)
  await decide()
  t.equal(jwks.state.fetches, 2)
})
