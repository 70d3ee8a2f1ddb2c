/**
 * Deadlines in tests turn a hang into a readable failure; they never measure speed. Each call site passes at least
 * four times what the awaited work takes on an idle machine, and PDP_TEST_DEADLINE_SCALE (default 1) multiplies
 * them all on a machine slower than that. The tap time-out per file (package.json) is above the sum of a file's.
 */
const scale = Number(process.env.PDP_TEST_DEADLINE_SCALE ?? '1')
if (!(scale >= 1)) throw new Error(`PDP_TEST_DEADLINE_SCALE must be a number >= 1, not ${process.env.PDP_TEST_DEADLINE_SCALE}`)

export function deadline(ms: number): number {
  return ms * scale
}

/** Polls `done` every `everyMs` until it holds; throws, naming `what`, past the deadline. */
export async function until(done: () => boolean | Promise<boolean>, what: string, deadlineMs = deadline(30_000), everyMs = 20): Promise<void> {
  const end = performance.now() + deadlineMs
  while (!(await done())) {
    if (performance.now() > end) throw new Error(`still waiting after ${deadlineMs} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/**
 * Fake time-outs for code that bounds a fetch with `AbortSignal.timeout(ms)`: the signals it asks for abort, with
 * the same TimeoutError, only when the test calls `expire()` (for example once a peer that never answers has got
 * the request), so that no real timer races the work. Restored when the test ends.
 */
export function manualTimeouts(t: { teardown(fn: () => unknown): void }) {
  const real = AbortSignal.timeout
  let pending: AbortController[] = []
  const asked: number[] = []
  AbortSignal.timeout = (ms: number) => {
    const controller = new AbortController()
    pending.push(controller)
    asked.push(ms)
    return controller.signal
  }
  t.teardown(() => {
    AbortSignal.timeout = real
  })
  return {
    /** The time-outs asked for so far, in ms. */
    asked,
    /** Fires every time-out asked for so far. */
    expire() {
      const due = pending
      pending = []
      for (const controller of due) controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
    },
  }
}
