import t from 'tap'
import { addedWorkAt, calibratedBurn, type Rung } from '../../scripts/bench/calibration.js'

// 1/ratio is 1 at the bare route, 2 at 25 µs and 4 at 50 µs: halving the throughput per 25 µs here.
const RUNGS: Rung[] = [
  { addedMicros: 50, ratio: 0.25 },
  { addedMicros: 25, ratio: 0.5 },
]

const cases: { name: string; rungs: Rung[]; ratio: number; expected: { micros: number; extrapolated: boolean } | undefined }[] = [
  { name: 'no rungs: nothing to read', rungs: [], ratio: 0.5, expected: undefined },
  { name: 'the bare route itself', rungs: RUNGS, ratio: 1, expected: { micros: 0, extrapolated: false } },
  { name: 'faster than the bare route counts as no added work', rungs: RUNGS, ratio: 1.2, expected: { micros: 0, extrapolated: false } },
  { name: 'between the bare route and the first rung', rungs: RUNGS, ratio: 2 / 3, expected: { micros: 12.5, extrapolated: false } },
  { name: 'exactly a rung', rungs: RUNGS, ratio: 0.5, expected: { micros: 25, extrapolated: false } },
  { name: 'between two rungs, linear in 1/ratio', rungs: RUNGS, ratio: 1 / 3, expected: { micros: 37.5, extrapolated: false } },
  { name: 'the last rung', rungs: RUNGS, ratio: 0.25, expected: { micros: 50, extrapolated: false } },
  { name: 'past the last rung: its segment extended', rungs: RUNGS, ratio: 0.2, expected: { micros: 62.5, extrapolated: true } },
  { name: 'rungs that do not fall as work is added: unreadable', rungs: [{ addedMicros: 25, ratio: 0.4 }, { addedMicros: 50, ratio: 0.45 }], ratio: 0.42, expected: undefined },
  { name: 'a rung no slower than the bare route: unreadable', rungs: [{ addedMicros: 25, ratio: 1.05 }], ratio: 0.9, expected: undefined },
  { name: 'a ratio of zero has no reading', rungs: RUNGS, ratio: 0, expected: undefined },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const found = addedWorkAt(c.rungs, c.ratio)
    if (c.expected === undefined) return void t.equal(found, undefined)
    t.ok(found)
    t.ok(Math.abs(found!.micros - c.expected.micros) < 1e-9, `${found!.micros} µs, expected ${c.expected.micros}`)
    t.equal(found!.extrapolated, c.expected.extrapolated)
  })
}

t.test('the burn loop spends CPU in proportion to what it is asked for', async (t) => {
  const { burn, perMicro } = calibratedBurn(2, 2_000_000)
  t.ok(perMicro > 0)
  const started = process.cpuUsage()
  burn(20_000)
  const used = process.cpuUsage(started)
  // A floor only, a quarter of what was asked: the loop was not optimised away; how long it took is not the point.
  t.ok(used.user + used.system >= 5_000, `${used.user + used.system} µs of CPU for 20,000 asked`)
})
