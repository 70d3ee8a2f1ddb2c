/**
 * What a throughput ratio against the bare route means in CPU: the bench also runs the bare route with a fixed
 * computation added to every request (`servers.ts bare --burn-us N`), so that one run shows which ratio N µs of
 * work per request yields on this machine. On two shared cores the ratio falls faster than the added work alone
 * would make it (the load generator idles and is woken for every answer of a slower server), so a target ratio
 * is read as a budget of added CPU through this curve rather than through the bare route's CPU alone.
 */

/** One rung: the bare route plus `addedMicros` of computation, and its throughput against the bare route in the same rounds. */
export interface Rung {
  addedMicros: number
  ratio: number
}

/**
 * The added work per request at which the rungs' curve reaches `ratio`: 1/ratio is interpolated linearly in the
 * added work (throughput goes as one over the cost of a request), between the rungs and the bare route itself
 * (0 µs, ratio 1); past the last rung the last segment is extended, and `extrapolated` says so. Undefined without
 * rungs, or where the rungs do not fall as work is added (a run too noisy to read).
 */
export function addedWorkAt(rungs: readonly Rung[], ratio: number): { micros: number; extrapolated: boolean } | undefined {
  if (!(ratio > 0)) return undefined
  const points = [{ addedMicros: 0, ratio: 1 }, ...[...rungs].sort((a, b) => a.addedMicros - b.addedMicros)]
  if (points.length < 2) return undefined
  for (let i = 1; i < points.length; i++) if (!(points[i]!.ratio < points[i - 1]!.ratio)) return undefined
  if (ratio >= 1) return { micros: 0, extrapolated: false }
  const inverse = 1 / ratio
  for (let i = 1; i < points.length; i++) {
    const low = points[i - 1]!
    const high = points[i]!
    if (ratio >= high.ratio) return { micros: between(low, high, inverse), extrapolated: false }
  }
  return { micros: between(points[points.length - 2]!, points[points.length - 1]!, inverse), extrapolated: true }
}

function between(low: Rung, high: Rung, inverse: number): number {
  const a = 1 / low.ratio
  const b = 1 / high.ratio
  return low.addedMicros + ((inverse - a) / (b - a)) * (high.addedMicros - low.addedMicros)
}

/**
 * A loop of floating-point work that allocates nothing, and how many of its iterations take one µs of this process's
 * CPU: the fastest of several timed passes, so that a pass the machine slowed down does not make every later
 * request burn more than asked.
 */
export function calibratedBurn(passes = 5, iterations = 20_000_000): { burn(micros: number): void; perMicro: number } {
  let sink = 0
  const spin = (n: number) => {
    let x = 1.000_1
    for (let i = 0; i < n; i++) x = x * 1.000_000_1 + 1e-9
    sink += x
  }
  let perMicro = 0
  for (let pass = 0; pass < passes; pass++) {
    const started = process.cpuUsage()
    spin(iterations)
    const used = process.cpuUsage(started)
    perMicro = Math.max(perMicro, iterations / Math.max(1, used.user + used.system))
  }
  return {
    // The result goes to a variable outside the loop's function, so the compiler cannot drop the loop as unused.
    burn: (micros) => spin(Math.round(micros * perMicro)),
    perMicro,
  }
}
