import t from 'tap'
import { join } from 'node:path'
import { loadCaseFiles } from '../src/cli/case-file.js'
import { engineTarget, runSuites, type CaseResult, type OpenTarget } from '../src/cli/policy-tests.js'
import { loadPolicyBundle } from '../src/engine/policy/bundle.js'
import { createGeoipLookup } from '../src/engine/risk/geo.js'
import { ROOT } from './helpers/build.js'
import { createIssuer } from './helpers/tokens.js'
import { httpTarget } from './cases/targets.js'

/**
 * The decision cases, in the one case format: the bundled policy's suites (policies/tests, which `pdp test` runs
 * for operators) and the repository's own (test/cases/<name>, each for a policy directory). Every suite runs
 * against the engine as `pdp test` runs it, over POST /decide on a listening server, and, when it has gateway
 * requests, again with those going through the forward-auth endpoints (the other inputs still through /decide).
 */
const CORPORA = [
  { cases: 'policies/tests', policy: 'policies' },
  { cases: 'test/cases/example', policy: 'policies' },
  { cases: 'test/cases/deny-override', policy: 'test/fixtures/policies/deny-override' },
]

// Loaded once: the geo database and the token issuer every server of this file trusts.
const geo = createGeoipLookup()
geo.warm()
const issuer = await createIssuer()
const jwksFile = await issuer.jwksFile()

function report(t: import('tap').Test, results: CaseResult[]): void {
  for (const r of results) t.ok(r.ok, `${r.file}:${r.line ?? '?'} ${r.name}`, r.ok ? {} : { via: r.via, problems: r.problems, got: r.got })
}

let gatewayCases = 0
for (const corpus of CORPORA) {
  const policyDir = join(ROOT, corpus.policy)
  const suites = await loadCaseFiles(join(ROOT, corpus.cases), corpus.cases)
  t.ok(suites.length > 0, `${corpus.cases}: case files found`)
  const runs: [string, OpenTarget, typeof suites][] = [
    ['engine', engineTarget(await loadPolicyBundle(policyDir), { geo }), suites],
    ['POST /decide', httpTarget({ policyDir, issuer, jwksFile, geo }), suites],
    ['forward-auth', httpTarget({ policyDir, issuer, jwksFile, geo }, true), suites.filter((s) => s.cases.some((c) => c.input.request !== undefined))],
  ]
  gatewayCases += suites.flatMap((s) => s.cases).filter((c) => c.input.request !== undefined).length
  for (const [name, target, these] of runs) {
    if (these.length > 0) t.test(`${corpus.cases}: ${name}`, async (t) => report(t, await runSuites(these, target)))
  }
}
t.ok(gatewayCases > 0, 'some cases are gateway requests, which go through forward-auth')
