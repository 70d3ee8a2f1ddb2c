import t from 'tap'
import type { Pdp } from '../../src/engine/pdp.js'
import type { Decision } from '../../src/engine/types.js'
import { createTurnBudget, takingTurns, turnHook } from '../../src/scheduling/turn-budget.js'

/** A loop of turns driven by hand: callbacks queued for the next turn run only when the test says so. */
function manualTurns() {
  let queued: (() => void)[] = []
  return {
    nextTurn: (callback: () => void) => void queued.push(callback),
    /** Runs what was queued before this call, as a check phase does, then lets promise continuations settle. */
    async turn(): Promise<void> {
      const now = queued
      queued = []
      for (const callback of now) callback()
      for (let i = 0; i < 10; i++) await Promise.resolve()
    },
    get pending() {
      return queued.length
    },
  }
}

t.test('within the budget every caller goes on at once; past it, callers wait for the next turn', async (t) => {
  let clock = 100
  const turns = manualTurns()
  const budget = createTurnBudget({ budgetMs: 2, now: () => clock, nextTurn: turns.nextTurn })
  t.equal(budget.admit(), undefined, 'the first decision of a turn runs')
  clock += 1.5
  t.equal(budget.admit(), undefined, 'still within 2 ms')
  clock += 0.5
  const waiting = budget.admit()
  t.ok(waiting instanceof Promise, 'at 2 ms the next one waits')
  let admitted = false
  void waiting!.then(() => (admitted = true))
  await Promise.resolve()
  t.notOk(admitted, 'not before the loop turns')
  await turns.turn()
  t.ok(admitted, 'released on the next turn')
  t.equal(budget.admit(), undefined, 'and that turn starts afresh')
})

t.test('a turn that ends within its budget leaves the next turn its whole budget', async (t) => {
  let clock = 0
  const turns = manualTurns()
  const budget = createTurnBudget({ budgetMs: 5, now: () => clock, nextTurn: turns.nextTurn })
  t.equal(budget.admit(), undefined)
  clock += 4
  await turns.turn()
  clock += 100
  t.equal(budget.admit(), undefined, 'a new turn, however late')
  clock += 4
  t.equal(budget.admit(), undefined, 'within the new turn’s budget')
})

t.test('a burst of decisions is spread over turns, in order, each turn within its budget', async (t) => {
  let clock = 0
  const turns = manualTurns()
  const ranIn: number[] = []
  let turn = 0
  // Each decision takes 1 ms of the (fake) clock; the budget lets three start per turn.
  const engine: Pdp = {
    decide: async (input) => {
      ranIn.push(turn)
      clock += 1
      return { decision: 'allow', decisionId: input.action, reasons: ['policy_allow'], policyVersion: 'v' } satisfies Decision
    },
    decideBatch: async () => [],
    plan: async () => {
      throw new Error('not asked')
    },
  }
  const pdp = takingTurns(engine, createTurnBudget({ budgetMs: 3, now: () => clock, nextTurn: turns.nextTurn }))
  const answers = Array.from({ length: 10 }, (_, i) => pdp.decide({ subject: { id: 'u' }, action: `a${i}`, resource: { type: 'documents' } }))
  while (turns.pending > 0) {
    turn++
    await turns.turn()
  }
  const ids = (await Promise.all(answers)).map((d) => d.decisionId)
  t.same(ids, Array.from({ length: 10 }, (_, i) => `a${i}`), 'every caller gets its own answer')
  t.same(ranIn, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3], 'three decisions per turn, first come first served')
})

t.test('batches and plans take turns too, and an engine error reaches its caller', async (t) => {
  let clock = 0
  const turns = manualTurns()
  const calls: string[] = []
  const engine: Pdp = {
    decide: async () => {
      calls.push('decide')
      clock += 10
      throw new Error('engine failed')
    },
    decideBatch: async () => {
      calls.push('batch')
      return []
    },
    plan: async () => {
      calls.push('plan')
      return { kind: 'always_denied' } as never
    },
  }
  const pdp = takingTurns(engine, createTurnBudget({ budgetMs: 1, now: () => clock, nextTurn: turns.nextTurn }))
  const failed = pdp.decide({ subject: { id: 'u' }, action: 'read', resource: { type: 'documents' } })
  const batch = pdp.decideBatch({ subject: { id: 'u' } }, [])
  const plan = pdp.plan({ subject: { id: 'u' }, action: 'read', resource: { type: 'documents' } })
  await t.rejects(failed, { message: 'engine failed' })
  t.same(calls, ['decide'], 'the rest wait: the decision used up the turn')
  await turns.turn()
  t.same(calls, ['decide', 'batch', 'plan'])
  t.same(await batch, [])
  t.same(await plan, { kind: 'always_denied' })
})

t.test('the routes’ hook lets a request on at once within the budget, and on a later turn past it', async (t) => {
  let clock = 0
  const turns = manualTurns()
  const hook = turnHook(createTurnBudget({ budgetMs: 2, now: () => clock, nextTurn: turns.nextTurn }))
  const went: string[] = []
  hook({}, {}, () => went.push('first'))
  clock += 3
  hook({}, {}, () => went.push('second'))
  hook({}, {}, () => went.push('third'))
  t.same(went, ['first'], 'past the budget, the others wait')
  await turns.turn()
  t.same(went, ['first', 'second', 'third'], 'and go on the next turn, in order')
})
