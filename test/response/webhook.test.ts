import t, { type Test } from 'tap'
import { createHmac } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { build, manualClock } from '../helpers/build.js'
import { deadline, manualTimeouts } from '../helpers/deadline.js'
import { createWebhookNotifier, webhookSignature } from '../../src/response/webhook.js'

const ADMIN = 'admin-token-for-tests-0123456789abcdef'
const SECRET = 'webhook-secret-for-tests-0123456789abcdef'
/** Per-attempt time-out where a live receiver answers: far above any delivery on a loaded machine, so it never fires (60 s is also PDP_WEBHOOK_TIMEOUT_MS's maximum). */
const ANSWERED_TIMEOUT_MS = deadline(60_000)

interface Received {
  headers: IncomingMessage['headers']
  body: string
}

/** A real HTTP receiver; `answer` decides the status of each delivery in turn. */
async function receiver(t: Test, answer: (n: number) => number | 'hang') {
  const received: Received[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      received.push({ headers: req.headers, body })
      const status = answer(received.length)
      if (status === 'hang') return
      res.statusCode = status
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/pdp`, received }
}

function verify(secret: string, header: string | string[] | undefined, body: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(header))
  if (!match) return false
  return createHmac('sha256', secret).update(`${match[1]}.${body}`).digest('hex') === match[2]
}

t.test('a lockout notifies a real receiver with a signed JSON body, after retrying a failure', async (t) => {
  const hook = await receiver(t, (n) => (n === 1 ? 503 : 204))
  const clock = manualClock()
  const app = await build(t, {
    env: { PDP_ADMIN_TOKEN: ADMIN, PDP_WEBHOOK_URL: hook.url, PDP_WEBHOOK_SECRET: SECRET, PDP_WEBHOOK_RETRIES: '2', PDP_WEBHOOK_TIMEOUT_MS: '60000' },
    now: clock.now,
    webhookBackoffMs: 1,
  })
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'POST', url: '/events', headers: { authorization: `Bearer ${ADMIN}` }, payload: { type: 'login_failure', subject: 'carol', ip: '81.2.69.142' } })
    t.equal(res.statusCode, 200)
  }
  await app.webhook!.settled()
  t.equal(hook.received.length, 2, 'the 503 was retried once')
  const [first, second] = hook.received
  t.equal(first!.body, second!.body, 'the retry carries the same delivery')
  t.equal(second!.headers['x-pdp-delivery'], JSON.parse(second!.body).id)
  t.equal(second!.headers['content-type'], 'application/json')
  t.ok(verify(SECRET, second!.headers['x-pdp-signature'], second!.body), 'the signature verifies with the shared secret')
  t.notOk(verify('another-secret-of-the-same-length-000000', second!.headers['x-pdp-signature'], second!.body), 'and not with another')
  t.match(JSON.parse(second!.body), { type: 'pdp.response', rule: 'brute_force', trigger: 'login_failure', target: { subject: 'carol', ip: '81.2.69.142' }, actions: ['lockout', 'notify'] })
  t.notMatch(JSON.stringify(hook.received), SECRET, 'the secret itself never travels')
  const metrics = await app.inject({ method: 'GET', url: '/metrics' })
  t.match(metrics.body, /pdp_webhook_deliveries_total\{result="delivered"\} 1/)
  t.match(metrics.body, /pdp_response_actions_total\{rule="brute_force",action="lockout"\} 1/)
  t.match(metrics.body, /pdp_security_events_total\{type="login_failure"\} 5/)
})

t.test('deliveries time out, give up after their retries, and never hold up the event', async (t) => {
  // Each attempt's time-out fires once the receiver, which never answers, has the request: no real timer races it.
  const timeouts = manualTimeouts(t)
  const hook = await receiver(t, () => {
    timeouts.expire()
    return 'hang'
  })
  const failures: { attempts: number; error: string }[] = []
  const notifier = createWebhookNotifier({ url: hook.url, secret: SECRET, timeoutMs: 1000, retries: 1, backoffMs: 1, onFailure: (f) => failures.push(f) })
  notifier.send({ id: 'd-1' })
  t.equal(failures.length, 0, 'send returns before anything is delivered')
  await notifier.settled()
  t.equal(hook.received.length, 2)
  t.same(timeouts.asked, [1000, 1000], 'each attempt bounded by the time-out')
  t.same(failures, [{ id: 'd-1', attempts: 2, error: 'timed out after 1000 ms' }])
})

t.test('a 4xx answer is not retried; an unreachable receiver is reported without the secret', async (t) => {
  const hook = await receiver(t, () => 400)
  const failures: { error: string }[] = []
  const rejected = createWebhookNotifier({ url: hook.url, secret: SECRET, timeoutMs: ANSWERED_TIMEOUT_MS, retries: 3, backoffMs: 1, onFailure: (f) => failures.push(f) })
  rejected.send({ id: 'd-2' })
  await rejected.settled()
  t.equal(hook.received.length, 1)
  t.match(failures, [{ error: 'HTTP 400' }])

  const nowhere = createWebhookNotifier({ url: 'http://127.0.0.1:1/hook', secret: SECRET, timeoutMs: ANSWERED_TIMEOUT_MS, retries: 1, backoffMs: 1, onFailure: (f) => failures.push(f) })
  nowhere.send({ id: 'd-3' })
  await nowhere.settled()
  t.equal(failures.length, 2)
  t.notMatch(JSON.stringify(failures), SECRET)
})

t.test('the signature covers the timestamp and the exact body', async (t) => {
  const a = webhookSignature(SECRET, 1_700_000_000, '{"a":1}')
  t.match(a, /^t=1700000000,v1=[0-9a-f]{64}$/)
  t.not(a, webhookSignature(SECRET, 1_700_000_001, '{"a":1}'))
  t.not(a, webhookSignature(SECRET, 1_700_000_000, '{"a":2}'))
})

t.test('PDP_WEBHOOK_URL without a secret stops the start with a one-line error', async (t) => {
  await t.rejects(build(t, { env: { PDP_WEBHOOK_URL: 'http://127.0.0.1:9/hook' } }), /PDP_WEBHOOK_SECRET: is required when PDP_WEBHOOK_URL is set/)
})
