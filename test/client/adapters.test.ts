import Fastify, { type FastifyRequest } from 'fastify'
import { createServer, type IncomingMessage } from 'node:http'
import t, { type Test } from 'tap'
import { createPdpClient, pdpFastifyHook, pdpMiddleware, type ClientDecision, type PdpClient } from '../../src/client/index.js'
import type { DecisionInput } from '../../src/engine/pdp.js'
import { parseChallenge } from '../http/parse-challenge.js'
import { manualClock } from '../helpers/build.js'
import { livePdp } from '../helpers/live-pdp.js'
import { listen, LIVE_TIMEOUT_MS, questions, refusedUrl } from './fixtures.js'

const pdpClock = manualClock()
const q = questions(pdpClock.now())

/** The service under test names the situation in a header; the adapters turn it into the PDP question. */
const SCENARIOS: Record<string, DecisionInput> = { allow: q.allow, deny: q.deny, 'step-up': q.stepUp, 'bad-token': q.badToken }

function scenarioOf(headers: IncomingMessage['headers']): DecisionInput {
  const name = headers['x-scenario']
  const input = typeof name === 'string' ? SCENARIOS[name] : undefined
  if (!input) throw new Error('unknown scenario')
  return input
}

interface Checked {
  status: number
  headers: { get(name: string): string | null }
  body: Record<string, unknown>
}

/** The same expectations for both adapters: allow passes with the decision attached, everything else is refused. */
async function checkMapping(t: Test, ask: (scenario: string) => Promise<Checked>, handled: () => number) {
  const allowed = await ask('allow')
  t.equal(allowed.status, 200)
  t.match(allowed.body, { handled: true, decision: 'allow' }, 'the handler ran and saw the decision')
  t.equal(handled(), 1)

  const denied = await ask('deny')
  t.equal(denied.status, 403)
  t.match(denied.body, { statusCode: 403, error: 'Forbidden', decision: 'deny', reason: 'no_matching_policy', decisionId: String })
  t.equal(denied.headers.get('www-authenticate'), null)
  t.match(denied.headers.get('content-type'), /^application\/json/)

  const stepUp = await ask('step-up')
  t.equal(stepUp.status, 401)
  const stepUpBody = stepUp.body as { reason: string; stepUp: { acrValues: string[]; maxAge: number } }
  t.match(stepUpBody, { decision: 'step_up', reason: 'step_up_required', stepUp: { level: String } })
  const challenge = parseChallenge(stepUp.headers.get('www-authenticate') ?? '')
  t.equal(challenge.scheme, 'Bearer')
  t.match(challenge.params, {
    error: 'insufficient_user_authentication',
    error_description: /authentication is required/,
    acr_values: stepUpBody.stepUp.acrValues.join(' '),
    max_age: String(stepUpBody.stepUp.maxAge),
  })

  const badToken = await ask('bad-token')
  t.equal(badToken.status, 401)
  t.match(badToken.body, { decision: 'deny', reason: 'token_invalid' })
  t.same(parseChallenge(badToken.headers.get('www-authenticate') ?? '').params, { error: 'invalid_token', error_description: 'token invalid' })

  t.equal(handled(), 1, 'no refused request reached the handler')
}

t.test('Fastify hook on a real Fastify app', async (t) => {
  const pdp = await livePdp(t, { now: pdpClock.now })
  const service = async (client: PdpClient) => {
    const app = Fastify({ logger: false })
    t.teardown(() => app.close())
    let handled = 0
    app.addHook('onRequest', pdpFastifyHook({ client, toInput: (request: FastifyRequest) => scenarioOf(request.headers) }))
    app.get('/documents', async (request) => {
      handled++
      return { handled: true, decision: request.pdpDecision?.decision }
    })
    return { app, handled: () => handled }
  }
  const inject = (app: Awaited<ReturnType<typeof service>>['app']) => async (scenario: string) => {
    const res = await app.inject({ method: 'GET', url: '/documents', headers: { 'x-scenario': scenario } })
    return { status: res.statusCode, headers: { get: (name: string) => (res.headers[name] as string | undefined) ?? null }, body: res.json() }
  }

  const live = await service(createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS }))
  await checkMapping(t, inject(live.app), live.handled)

  const down = await service(createPdpClient({ baseUrl: await refusedUrl() }))
  const refused = await inject(down.app)('allow')
  t.equal(refused.status, 403, 'an unreachable PDP refuses the request')
  t.match(refused.body, { decision: 'deny', reason: 'pdp_unavailable' })
  t.equal(down.handled(), 0)

  const unknown = await inject(live.app)('no-such-scenario')
  t.equal(unknown.status, 500, 'a failing toInput goes to Fastify\'s error handler')
  t.equal(live.handled(), 1, 'and the request is not let through')
})

t.test('Express-style middleware on plain node:http', async (t) => {
  const pdp = await livePdp(t, { now: pdpClock.now })
  const service = async (client: PdpClient) => {
    let handled = 0
    const authorize = pdpMiddleware({ client, toInput: (req: IncomingMessage) => scenarioOf(req.headers) })
    const server = createServer((req: IncomingMessage & { pdpDecision?: ClientDecision }, res) => {
      authorize(req, res, (error) => {
        res.setHeader('content-type', 'application/json')
        if (error) {
          res.statusCode = 500
          res.end(JSON.stringify({ error: 'internal' }))
          return
        }
        handled++
        res.end(JSON.stringify({ handled: true, decision: req.pdpDecision?.decision }))
      })
    })
    t.teardown(() => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(resolve))
    })
    const url = await listen(server)
    const ask = async (scenario: string) => {
      const res = await fetch(`${url}/documents`, { headers: { 'x-scenario': scenario } })
      return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> }
    }
    return { ask, handled: () => handled }
  }

  const live = await service(createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS }))
  await checkMapping(t, live.ask, live.handled)

  const down = await service(createPdpClient({ baseUrl: await refusedUrl() }))
  const refused = await down.ask('allow')
  t.equal(refused.status, 403, 'an unreachable PDP refuses the request')
  t.match(refused.body, { decision: 'deny', reason: 'pdp_unavailable' })
  t.equal(down.handled(), 0)

  const unknown = await live.ask('no-such-scenario')
  t.equal(unknown.status, 500, 'a failing toInput is passed to next(error)')
  t.equal(live.handled(), 1, 'and the request is not let through')
})
