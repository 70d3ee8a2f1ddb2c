import t from 'tap'
import { parseCaseFile } from '../src/cli/case-file.js'
import { runPolicySuites } from '../src/cli/policy-tests.js'
import { loadPolicyBundle } from '../src/engine/policy/bundle.js'
import { PolicyFileError } from '../src/engine/policy/policy-files.js'
import { EXAMPLE_POLICIES } from './helpers/build.js'

// The case file format's own rules: what the loader refuses (with file and line), and what it makes of a valid file.

const head = `description: d
defaults:
  context: { device: { id: laptop-1, managed: true } }
cases:
`
const FILE = 'tests/x.yaml'

function fault(text: string): PolicyFileError {
  try {
    parseCaseFile(text, FILE)
  } catch (err) {
    if (err instanceof PolicyFileError) return err
    throw err
  }
  throw new Error('no fault')
}

t.test('faults name the file, the line and the value', async (t) => {
  const faults: [string, string, number, RegExp][] = [
    ['an unknown key in a case', `  - name: a\n    input: { subject: { id: a }, action: read, resource: { type: t } }\n    expect: { decision: allow }\n    wants: 1\n`, 8, /cases\.0\.wants: unknown key "wants"/],
    ['a verdict that does not exist', `  - name: a\n    input: { subject: { id: a }, action: read, resource: { type: t } }\n    expect:\n      decision: maybe\n`, 8, /cases\.0\.expect\.decision: must be one of allow, deny, step_up/],
    ['a reason code that does not exist', `  - name: a\n    input: { subject: { id: a }, action: read, resource: { type: t } }\n    expect: { decision: deny, reasons: [no_such_reason] }\n`, 7, /cases\.0\.expect\.reasons\.0: must be one of policy_allow/],
    ['both subject and token', `  - name: a\n    input: { subject: { id: a }, token: { sub: a }, action: read, resource: { type: t } }\n    expect: { decision: allow }\n`, 6, /cases\.0\.input: needs exactly one of subject or token/],
    ['neither action nor a gateway request', `  - name: a\n    input: { subject: { id: a } }\n    expect: { decision: allow }\n`, 6, /needs action and resource \(or a gateway request\)/],
    ['a gateway request and an action', `  - name: a\n    input: { token: { sub: a }, action: read, request: { method: GET, path: /x } }\n    expect: { decision: allow }\n`, 6, /give request or action and resource, not both/],
    ['a gateway request with a subject', `  - name: a\n    input: { subject: { id: a }, request: { method: GET, path: /x } }\n    expect: { decision: allow }\n`, 6, /carries a token \(claims\), not a subject/],
    ['a gateway request with a device', `  - name: a\n    input: { token: { sub: a }, request: { method: GET, path: /x }, context: { ip: 1.2.3.4, device: { id: d } } }\n    expect: { decision: allow }\n`, 6, /context is its ip only .*not device/],
    ['a gateway request in a given step', `  - name: a\n    given:\n      - decide: { token: { sub: a }, request: { method: GET, path: /x }, explain: true }\n    input: { subject: { id: a }, action: read, resource: { type: t } }\n    expect: { decision: allow }\n`, 7, /cases\.0\.given\.0\.decide: a gateway request cannot ask for an explanation/],
    ['a time that is none', `  - name: a\n    at: '2026-13-45T00:00:00Z'\n    input: { subject: { id: a }, action: read, resource: { type: t } }\n    expect: { decision: allow }\n`, 6, /cases\.0\.at: "2026-13-45T00:00:00Z" is no time/],
    ['no cases', '', 4, /cases: /],
  ]
  for (const [name, cases, line, problem] of faults) {
    const err = fault(head + cases)
    t.equal(err.file, FILE, `${name}: file`)
    t.equal(err.line, line, `${name}: line`)
    t.match(err.problem, problem, name)
  }
  t.match(fault('cases: [\n').message, /^tests\/x\.yaml:\d+: not valid YAML/, 'YAML syntax')
})

t.test('a valid file: lines, clock, and the default context for decision requests only', async (t) => {
  const suite = parseCaseFile(
    `${head}  - name: plain
    input: { subject: { id: a }, action: read, resource: { type: t } }
    expect: { decision: allow }
  - name: own context
    at: '2026-03-02T00:00:00Z'
    input: { subject: { id: a }, action: read, resource: { type: t }, context: { ip: 1.2.3.4 } }
    expect: { decision: allow }
  - name: gateway
    input: { token: { sub: a }, request: { method: GET, path: /x } }
    expect: { decision: allow }
`,
    FILE,
  )
  t.equal(suite.start, Date.parse('2026-03-01T12:00:00Z'), 'the default start')
  t.same(suite.cases.map((c) => c.line), [5, 8, 12])
  t.same(suite.cases[0]!.input.context, { device: { id: 'laptop-1', managed: true } }, 'the default context')
  t.same(suite.cases[1]!.input.context, { ip: '1.2.3.4' }, 'its own context, not merged')
  t.equal(suite.cases[1]!.at, Date.parse('2026-03-02T00:00:00Z'))
  t.equal(suite.cases[2]!.input.context, undefined, 'a gateway request gets no device from the defaults')
})

t.test('a gateway request no route maps fails its case, naming it; the suite goes on', async (t) => {
  const suite = parseCaseFile(
    `cases:
  - name: nowhere
    input: { token: { sub: alice, tenant: acme, amr: [pwd, otp] }, request: { method: GET, path: /nowhere } }
    expect: { decision: deny }
  - name: somewhere
    input: { token: { sub: alice, tenant: acme, amr: [pwd, otp] }, request: { method: GET, path: /api/documents/d1 } }
    expect: { decision: allow }
`,
    FILE,
  )
  const results = await runPolicySuites(await loadPolicyBundle(EXAMPLE_POLICIES), [suite])
  t.match(results, [
    { name: 'nowhere', file: FILE, line: 2, ok: false, problems: ['could not run: no route of routes.yaml maps GET /nowhere'] },
    { name: 'somewhere', ok: true },
  ])
})
