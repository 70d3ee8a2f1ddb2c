import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { build, CALLER, manualClock, ROOT } from './helpers/build.js'

/**
 * The README's tour ("Ask it"), run as written: its curl bodies against the app as `PDP_DECIDE_AUTH=token npm start`
 * serves it, and each answer compared with the JSON the README shows (all of it but the decisionId, which differs
 * on every call). The README's `$(( $(date +%s) - N ))` is the clock's second less N; "seconds later" is one second.
 */
interface TourStep {
  body: Record<string, unknown>
  answer: Record<string, unknown>
}

async function tourSteps(nowSec: number): Promise<TourStep[]> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const tour = readme.slice(readme.indexOf('## Ask it'), readme.indexOf('\n## ', readme.indexOf('## Ask it') + 1))
  const blocks = [...tour.matchAll(/```(sh|json)\n([\s\S]*?)```/g)].map(([, kind, text]) => ({ kind, text: text! }))
  const steps: TourStep[] = []
  blocks.forEach((block, i) => {
    if (block.kind !== 'sh' || !block.text.includes('/decide')) return
    const next = blocks[i + 1]
    if (next?.kind !== 'json') return
    const quoted = block.text.slice(block.text.indexOf("-d '") + 4, block.text.lastIndexOf("'"))
    const body = quoted.replace(/'\$\(\( \$\(date \+%s\) - (\d+) \)\)'/g, (_, ago: string) => String(nowSec - Number(ago)))
    steps.push({ body: JSON.parse(body) as Record<string, unknown>, answer: JSON.parse(next.text) as Record<string, unknown> })
  })
  return steps
}

t.test("the README's tour answers what the README shows", async (t) => {
  const clock = manualClock()
  const app = await build(t, { env: CALLER.env, now: clock.now })
  const steps = await tourSteps(Math.floor(clock.now() / 1000))
  t.equal(steps.length, 2, 'the tour asks twice: from London, then from Sydney')
  const ask = (body: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/decide', headers: { authorization: `Bearer ${CALLER.env.PDP_ADMIN_TOKEN}` }, payload: body })
  for (const [i, step] of steps.entries()) {
    if (i > 0) clock.advance(1000)
    const res = await ask(step.body)
    t.equal(res.statusCode, 200)
    const { decisionId, ...answer } = res.json() as Record<string, unknown>
    t.match(decisionId, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a UUIDv7')
    const { decisionId: _shown, ...shown } = step.answer
    t.same(answer, shown, `answer ${i + 1} as the README shows it`)
  }

  // "Bob's next request, even from his laptop in London with a fresh hardware-key login, is denied": the
  // account_takeover rule froze the account and revoked his sessions after the second answer.
  await app.responder.settled()
  clock.advance(2000)
  const [london] = steps
  const context = london!.body.context as { session: Record<string, unknown> }
  const again = (await ask(london!.body)).json() as { decision: string; reasons: string[] }
  t.same([again.decision, again.reasons[0]], ['deny', 'session_revoked'], 'the session from before the freeze')
  const fresh = { ...london!.body, context: { ...context, session: { id: 's-82', authTime: Math.floor(clock.now() / 1000), amr: ['hwk'] } } }
  const renewed = (await ask(fresh)).json() as { decision: string; reasons: string[] }
  t.same([renewed.decision, renewed.reasons[0]], ['deny', 'account_frozen'], 'a new session')
})
