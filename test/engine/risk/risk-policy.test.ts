import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PolicyFileError } from '../../../src/engine/policy/policy-files.js'
import { DEFAULT_RISK_POLICY, parseRiskPolicy } from '../../../src/engine/policy/files/risk.js'
import { sensitivityOf } from '../../../src/engine/risk/sensitivity.js'
import { EXAMPLE_POLICIES } from '../../helpers/build.js'

t.test('an empty file is the reference scoring', async (t) => {
  t.same(parseRiskPolicy(''), DEFAULT_RISK_POLICY)
  t.same(parseRiskPolicy('# nothing but a comment\n'), DEFAULT_RISK_POLICY)
})

t.test('the shipped risk.yaml writes out the reference values and adds resource sensitivities', async (t) => {
  const shipped = parseRiskPolicy(await readFile(join(EXAMPLE_POLICIES, 'risk.yaml'), 'utf8'))
  t.same({ ...shipped, sensitivity: undefined }, { ...DEFAULT_RISK_POLICY, sensitivity: undefined })
  t.same(shipped.sensitivity.multipliers, { low: 0.7, medium: 1.0, high: 1.3, critical: 1.6 })
  t.equal(shipped.sensitivity.resources.get('system.config')?.get('default'), 'critical')
  t.equal(shipped.sensitivity.resources.get('documents')?.get('delete'), 'high')
})

t.test('values override the defaults', async (t) => {
  const p = parseRiskPolicy('thresholds: { low: 20 }\nlocation:\n  highRiskCountries: [KP, IR]\n  allowedCountries: { tenants: { acme: [GB] } }\n')
  t.equal(p.thresholds.low, 20)
  t.equal(p.thresholds.medium, 50)
  t.same(p.location.highRiskCountries, ['KP', 'IR'])
  t.same([...p.location.allowedCountries.tenants], [['acme', ['GB']]])
})

t.test('tenants, subjects, resource types and actions named like Object.prototype properties find nothing', async (t) => {
  const p = parseRiskPolicy(
    'location:\n  allowedCountries: { tenants: { acme: [GB] }, subjects: { bob: [GB] } }\nsensitivity:\n  resources:\n    documents: { delete: high }\n',
  )
  for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
    t.equal(p.location.allowedCountries.tenants.get(name), undefined, `tenant ${name}`)
    t.equal(p.location.allowedCountries.subjects.get(name), undefined, `subject ${name}`)
    t.equal(sensitivityOf(undefined, name, 'read', p), 'medium', `resource type ${name}`)
    t.equal(sensitivityOf(undefined, 'documents', name, p), 'medium', `action ${name}`)
  }
  t.equal(sensitivityOf(undefined, 'documents', 'delete', p), 'high', 'a listed action still counts')
  // The names are ordinary keys when a policy does list them.
  const listed = parseRiskPolicy('location:\n  allowedCountries: { tenants: { constructor: [FR] } }\nsensitivity:\n  resources:\n    constructor: critical\n')
  t.same(listed.location.allowedCountries.tenants.get('constructor'), ['FR'])
  t.equal(sensitivityOf(undefined, 'constructor', 'toString', listed), 'critical')
})

t.test('a step-up method named like an Object.prototype property is unknown unless stepUp.amr defines it', async (t) => {
  t.throws(() => parseRiskPolicy('stepUp:\n  levels:\n    high: { methods: [constructor] }\n'), /unknown method "constructor"/)
  const p = parseRiskPolicy('stepUp:\n  amr: { constructor: [hwk] }\n  levels:\n    high: { methods: [constructor] }\n')
  t.same(p.stepUp.levels.high.methods, ['constructor'])
})

t.test('every mistake names file, line and key', async (t) => {
  const cases: [string, number, RegExp][] = [
    ['tresholds: { low: 10 }\n', 1, /unknown key "tresholds"/],
    ['thresholds:\n  low: 60\n  medium: 50\n', 1, /thresholds: must be ordered: low <= medium/],
    ['thresholds:\n  low: ten\n', 2, /thresholds\.low: must be a number/],
    ['thresholds:\n  high: 150\n', 2, /thresholds\.high: must be between 0 and 100 \(got 150\)/],
    ['scoring:\n  deviceTrust:\n    - { add: 20 }\n', 3, /scoring\.deviceTrust\.0: missing required key "below"/],
    ['stepUp:\n  levels:\n    high: { methods: [] }\n', 3, /stepUp\.levels\.high\.methods: must not be an empty list/],
    ['stepUp:\n  levels:\n    high:\n      maxAge: 1.5\n', 4, /maxAge: must be a whole number \(got 1\.5\)/],
    ['scoring:\n  deviceTrust:\n    - { below: 40, add: 20 }\n    - { below: 70, add: 30 }\n', 4, /steps must be ordered/],
    ['scoring:\n  deviceTrust:\n    - { under: 40, add: 20 }\n', 3, /unknown key "under"/],
    ['location:\n  highRiskCountries: [KP, iran]\n', 2, /highRiskCountries\.1: must be an ISO 3166-1 alpha-2 code \(two capital letters\) \(got "iran"\)/],
    ['stepUp:\n  levels:\n    high: { methods: [retina] }\n', 3, /unknown method "retina"/],
    ['device:\n  initialTrust: 40\n  missingTrust: 60\n', 3, /must not exceed initialTrust/],
    ['sensitivity:\n  resources:\n    documents: { delete: extreme }\n', 3, /must be one of low, medium, high, critical/],
    ['behaviour:\n  weights: { rate: 2 }\n', 2, /between 0 and 1/],
    ['thresholds: [1, 2]\n', 1, /must be a mapping/],
    ['scoring: { noSession: 10\n', 2, /not valid YAML/],
  ]
  for (const [text, line, pattern] of cases) {
    t.throws(() => parseRiskPolicy(text), PolicyFileError, String(pattern))
    t.throws(() => parseRiskPolicy(text), { message: new RegExp(`^risk\\.yaml:${line}: `) }, `${pattern}: line ${line}`)
    t.throws(() => parseRiskPolicy(text), { message: pattern }, String(pattern))
  }
})
