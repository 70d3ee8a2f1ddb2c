import t from 'tap'
import { loadPolicySuites } from '../../src/cli/policy-tests.js'
import { build, EXAMPLE_POLICIES, manualClock } from '../helpers/build.js'

// Every permission row of the bundled policy, allow and deny sides, as `pdp test` runs them against the
// engine (policies/tests/permissions-*.yaml), asked again through POST /decide.
const suites = (await loadPolicySuites(EXAMPLE_POLICIES)).filter((s) => /(^|\/)permissions-[^/]+\.yaml$/.test(s.file))

t.ok(suites.length >= 3, 'the permission suites are found')
for (const suite of suites) {
  t.test(`${suite.file} through POST /decide`, async (t) => {
    const clock = manualClock(suite.start)
    const app = await build(t, { now: clock.now })
    for (const c of suite.cases) {
      if (c.given.length > 0 || c.input.token !== undefined) throw new Error(`${suite.file}: "${c.name}" is not a plain permission case`)
      if (c.at !== undefined) clock.set(c.at)
      const res = await app.inject({ method: 'POST', url: '/decide', payload: c.input })
      t.equal(res.statusCode, 200, c.name)
      const got = res.json() as { decision: string; reasons: string[]; stepUp?: { level: string } }
      t.equal(got.decision, c.expect.decision, c.name)
      if (c.expect.reasons) t.same(got.reasons, c.expect.reasons, `${c.name}: exact reasons`)
      for (const reason of c.expect.reasonsInclude ?? []) t.ok(got.reasons.includes(reason), `${c.name}: includes ${reason}`)
      if (c.expect.stepUpLevel) t.equal(got.stepUp?.level, c.expect.stepUpLevel, `${c.name}: step-up level`)
    }
  })
}
