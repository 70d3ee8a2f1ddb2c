import type { Pdp } from '../engine/pdp.js'

/**
 * How long one turn of the event loop may spend deciding. Under load every readable connection's request is
 * handled in the same turn, so 32 connections at a few hundred µs each hold timers (store and request time-outs),
 * health probes and store replies back for many milliseconds. Past the budget, decisions wait for the next turn:
 * the loop serves everything else in between, and the waiting decisions keep their order.
 */
export interface TurnBudget {
  /** Undefined when the caller may decide now; otherwise a promise that settles on a later turn, to ask again then. */
  admit(): Promise<void> | undefined
}

export interface TurnBudgetOptions {
  /** Milliseconds of deciding per turn; the first decision of a turn always runs, however long it takes. */
  budgetMs: number
  /** A monotonic clock in ms; performance.now by default. */
  now?: () => number
  /** Runs a callback on the loop's next check phase; setImmediate by default. */
  nextTurn?: (callback: () => void) => void
}

export function createTurnBudget(options: TurnBudgetOptions): TurnBudget {
  const now = options.now ?? (() => performance.now())
  const nextTurn = options.nextTurn ?? setImmediate
  // When the current turn's first decision started; -1 between turns. The closing callback is queued before
  // any decision the turn defers, so it runs first on the next check phase and they start a fresh turn.
  let turnStart = -1
  const closeTurn = () => {
    turnStart = -1
  }
  return {
    admit() {
      const at = now()
      if (turnStart < 0) {
        turnStart = at
        nextTurn(closeTurn)
        return undefined
      }
      if (at - turnStart < options.budgetMs) return undefined
      return new Promise((resolve) => nextTurn(resolve))
    },
  }
}

/** The engine behind a turn budget: every decision, batch and plan waits for its turn first (no wait within budget). */
export function takingTurns(pdp: Pdp, budget: TurnBudget): Pdp {
  const inTurn = <T>(run: () => Promise<T>): Promise<T> => {
    const wait = budget.admit()
    return wait === undefined ? run() : wait.then(() => inTurn(run))
  }
  return {
    decide: (input, options) => inTurn(() => pdp.decide(input, options)),
    decideBatch: (input, items, options) => inTurn(() => pdp.decideBatch(input, items, options)),
    plan: (input, options) => inTurn(() => pdp.plan(input, options)),
  }
}

/**
 * The same budget as a callback hook for the routes that decide, so that parsing and validating a request wait for
 * the turn too: without it, every ready connection's request is read, parsed and validated in the turn it arrives.
 */
export function turnHook(budget: TurnBudget): (request: unknown, reply: unknown, done: () => void) => void {
  return (_request, _reply, done) => {
    const go = (): void => {
      const wait = budget.admit()
      if (wait === undefined) done()
      else void wait.then(go)
    }
    go()
  }
}
