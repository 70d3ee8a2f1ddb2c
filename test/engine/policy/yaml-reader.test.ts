import t from 'tap'
import { Type } from 'typebox'
import { PolicyFileError } from '../../../src/engine/policy/policy-files.js'
import { parseIdentityPolicy } from '../../../src/engine/policy/files/identity.js'
import { parseRequestMapping } from '../../../src/engine/policy/files/request.js'
import { parseResponsePolicy } from '../../../src/engine/policy/files/response.js'
import { parseRiskPolicy } from '../../../src/engine/policy/files/risk.js'
import { parseRouteMap } from '../../../src/engine/policy/files/routes.js'
import { readYaml, readYamlDocument } from '../../../src/engine/policy/yaml-reader.js'

const PARSERS: Record<string, (text: string) => unknown> = {
  'risk.yaml': parseRiskPolicy,
  'response.yaml': parseResponsePolicy,
  'identity.yaml': parseIdentityPolicy,
  'routes.yaml': parseRouteMap,
  'request.yaml': parseRequestMapping,
}

/** A file's text with one fault, the line it is on, and the path of the value at fault ('' for the file itself). */
type Case = [text: string, line: number, path: string]

const RULE = 'rules:\n  r1:\n    detect: { kind: event, events: [logout] }\n'
const ROUTE = 'routes:\n  - method: GET\n    path: /x\n    resource: { type: a }\n    action: read\n'

/**
 * Each kind of fault, the one wording every file gives it, and a case of it in each file where it can
 * occur (request.yaml has no fixed keys and nothing required; its values are words, not numbers).
 */
const FAULTS: Record<string, { wording: RegExp; cases: Record<string, Case> }> = {
  'unknown key': {
    wording: /^unknown key "[^"]+" \(expected one of [^)]+\)$/,
    cases: {
      'risk.yaml': ['thresholds:\n  low: 10\n  lwo: 20\n', 3, 'thresholds.lwo'],
      'response.yaml': [`${RULE}    actions: [notify]\n    severity: high\n`, 5, 'rules.r1.severity'],
      'identity.yaml': ['sessions:\n  idleBase: 30\n', 2, 'sessions.idleBase'],
      'routes.yaml': [`${ROUTE}    sensitive: true\n`, 6, 'routes.0.sensitive'],
    },
  },
  'wrong type': {
    wording: /^must be (a number|a whole number|a string|a list|a mapping|true or false) \(got .+\)$/,
    cases: {
      'risk.yaml': ['behaviour:\n  burstRatio: lots\n', 2, 'behaviour.burstRatio'],
      'response.yaml': [`${RULE}    actions: [notify]\n    enabled: sometimes\n`, 5, 'rules.r1.enabled'],
      'identity.yaml': ['grants:\n  sensitiveRoles: admin\n', 2, 'grants.sensitiveRoles'],
      'routes.yaml': ['routes:\n  - path: /x\n    resource: documents\n    action: read\n', 3, 'routes.0.resource'],
      'request.yaml': ['sub: subject.id\nobj: [resource.id]\n', 2, 'obj'],
    },
  },
  'out of range': {
    wording: /^must be (between \S+ and \S+|at least \S+|one of .+) \(got .+\)$/,
    cases: {
      'risk.yaml': ['thresholds:\n  high: 150\n', 2, 'thresholds.high'],
      'response.yaml': ['rules:\n  r1:\n    detect: { kind: ip_subjects, events: [login_failure], threshold: 0, windowSeconds: 60 }\n    actions: [notify]\n', 3, 'rules.r1.detect.threshold'],
      'identity.yaml': ['sessions:\n  onIdle: nap\n', 2, 'sessions.onIdle'],
      'routes.yaml': [`${ROUTE}    sensitivity: extreme\n`, 6, 'routes.0.sensitivity'],
    },
  },
  'missing required key': {
    wording: /^missing required key "[^"]+"$/,
    cases: {
      'risk.yaml': ['scoring:\n  deviceTrust:\n    - { add: 20 }\n', 3, 'scoring.deviceTrust.0'],
      'response.yaml': [RULE, 2, 'rules.r1'],
      'identity.yaml': ['grants:\n  sensitivePermissions:\n    - resourceType: users\n', 3, 'grants.sensitivePermissions.0'],
      'routes.yaml': ['routes:\n  - method: GET\n    resource: { type: a }\n    action: read\n', 2, 'routes.0'],
    },
  },
  'not valid YAML': {
    wording: /^not valid YAML: .+$/,
    cases: {
      'risk.yaml': ['thresholds:\n\tlow: 10\n', 2, ''],
      'response.yaml': ['rules:\n\tr1: {}\n', 2, ''],
      'identity.yaml': ['sessions:\n  onIdle: deny\ngrants:\n\tmaxDurationSeconds: 60\n', 4, ''],
      'routes.yaml': ['unmapped: deny\nroutes:\n\t- { path: /x }\n', 3, ''],
      'request.yaml': ['sub: subject.id\n\tobj: resource.id\n', 2, ''],
    },
  },
  'duplicate key': {
    wording: /^duplicate key "[^"]+"$/,
    cases: {
      'risk.yaml': ['thresholds:\n  low: 10\n  low: 20\n', 3, 'thresholds'],
      'response.yaml': [`${RULE}    actions: [notify]\n    actions: [notify]\n`, 5, 'rules.r1'],
      'identity.yaml': ['sessions:\n  onIdle: deny\nsessions:\n  onIdle: step_up\n', 3, ''],
      'routes.yaml': [`${ROUTE}    action: write\n`, 6, 'routes.0'],
      'request.yaml': ['sub: subject.id\nobj: resource.id\nsub: subject.tenant\n', 3, ''],
    },
  },
}

function thrown(run: () => unknown): unknown {
  try {
    run()
  } catch (err) {
    return err
  }
  return undefined
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

for (const [kind, { wording, cases }] of Object.entries(FAULTS)) {
  t.test(`${kind}: every policy file words it the same, at the line of the value`, async (t) => {
    for (const [file, [text, line, path]] of Object.entries(cases)) {
      const error = thrown(() => PARSERS[file]!(text))
      if (!(error instanceof PolicyFileError)) {
        t.fail(`${file}: expected a PolicyFileError, got ${String(error)}`)
        continue
      }
      t.equal(error.file, file, `${file}: ${kind} names the file`)
      t.equal(error.line, line, `${file}: ${kind} is on line ${line}`)
      const prefix = path === '' ? '' : `${path}: `
      t.ok(error.problem.startsWith(prefix), `${file}: "${error.problem}" starts with the path "${prefix}"`)
      t.match(error.problem.slice(prefix.length), wording, `${file}: "${error.message}"`)
      t.match(error.message, new RegExp(`^${escape(file)}:${line}: ${escape(prefix)}`), `${file}: file:line: path: problem`)
    }
  })
}

t.test('rules beyond the schema report in the same shape: file, line, path, problem', async (t) => {
  const cases: Record<string, [...Case, problem: RegExp]> = {
    'risk.yaml': ['thresholds:\n  low: 60\n  medium: 50\n', 1, 'thresholds', /^must be ordered: low <= medium <= high <= deny$/],
    'response.yaml': ['rules:\n  r1:\n    detect: { kind: subject_countries, minCountries: 4, minEvents: 3, windowSeconds: 60 }\n    actions: [notify]\n', 3, 'rules.r1.detect.minEvents', /^must be at least minCountries$/],
    'identity.yaml': ['sessions:\n  idleBaseMinutes: 10\n  idleMinimumMinutes: 20\n', 3, 'sessions.idleMinimumMinutes', /^must not exceed idleBaseMinutes$/],
    'routes.yaml': ['routes:\n  - path: /x/:id\n    resource: { type: a, id: ":nope" }\n    action: read\n', 3, 'routes.0.resource.id', /^:nope is not a parameter of the path$/],
    'request.yaml': ['sub: subject.id\nobj: resource.attributes.__proto__\n', 2, 'obj', /^must be a request value: .+ \(got "resource\.attributes\.__proto__"\)$/],
  }
  for (const [file, [text, line, path, problem]] of Object.entries(cases)) {
    const error = thrown(() => PARSERS[file]!(text))
    t.ok(error instanceof PolicyFileError, `${file}: a PolicyFileError`)
    t.match(error, { file, line, problem: new RegExp(`^${escape(path)}: ${problem.source.slice(1)}`) }, file)
  }
})

t.test('an empty file, or a key written with nothing after it, takes the defaults in every file', async (t) => {
  for (const [file, parse] of Object.entries(PARSERS)) {
    t.doesNotThrow(() => parse(''), `${file}: empty`)
    t.doesNotThrow(() => parse('# only a comment\n'), `${file}: a comment`)
  }
  t.same(parseIdentityPolicy('sessions:\n  idleBaseMinutes:\n  onIdle: deny\n').sessions.idleBaseMinutes, 30)
  t.same(parseRiskPolicy('thresholds:\n').thresholds, parseRiskPolicy('').thresholds)
})

t.test('readYaml: the value the file holds, checked against any schema', async (t) => {
  const Case = Type.Object(
    {
      name: Type.String({ minLength: 1 }),
      expect: Type.Union([
        Type.Object({ decision: Type.Literal('allow') }, { additionalProperties: false }),
        Type.Object({ decision: Type.Literal('deny'), reason: Type.String() }, { additionalProperties: false }),
      ]),
      note: Type.Optional(Type.String()),
    },
    { additionalProperties: false },
  )
  t.same(readYaml(Case, 'name: one\nexpect: { decision: deny, reason: policy_deny }\nnote:\n', 'cases.yaml'), {
    name: 'one',
    expect: { decision: 'deny', reason: 'policy_deny' },
  })
  // A union of mappings is told apart by its constant key: the fault is in the branch the value names.
  t.throws(() => readYaml(Case, 'name: one\nexpect:\n  decision: deny\n', 'cases.yaml'), {
    message: 'cases.yaml:2: expect: missing required key "reason"',
  })
  t.throws(() => readYaml(Case, 'name: one\nexpect:\n  decision: maybe\n', 'cases.yaml'), {
    message: 'cases.yaml:3: expect.decision: must be one of allow, deny (got "maybe")',
  })
  const doc = readYamlDocument(Case, 'name: one\nexpect: { decision: allow }\n', 'cases.yaml')
  t.equal(doc.lineOf(['expect', 'decision']), 2)
  t.throws(() => doc.fail(['name'], 'is taken'), { message: 'cases.yaml:1: name: is taken' })
})
