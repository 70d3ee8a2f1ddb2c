import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { EXAMPLE_POLICIES } from '../helpers/build.js'
import { DEFAULT_RESPONSE_POLICY, parseResponsePolicy } from '../../src/engine/policy/files/response.js'

t.test('the shipped response.yaml holds the reference rules', async (t) => {
  const shipped = parseResponsePolicy(await readFile(join(EXAMPLE_POLICIES, 'response.yaml'), 'utf8'))
  t.same(shipped, DEFAULT_RESPONSE_POLICY)
})

t.test('actions are bare names or one-key mappings, with defaults', async (t) => {
  const policy = parseResponsePolicy(`
rules:
  on_suspicion:
    detect: { kind: event, events: [suspicious_activity] }
    actions: [require_step_up, { block_ip: { mode: deny } }, notify]
  off_rule:
    enabled: false
    detect: { kind: event, events: [logout] }
    actions: [notify]
`)
  t.same(policy.rules, [
    {
      name: 'on_suspicion',
      detect: { kind: 'event', events: ['suspicious_activity'] },
      actions: [
        { type: 'require_step_up', level: 'high', durationSeconds: 3600 },
        { type: 'block_ip', mode: 'deny', level: 'high', durationSeconds: 3600 },
        { type: 'notify' },
      ],
      cooldownSeconds: 3600,
    },
  ])
})

t.test('an action written with an empty mapping value takes its defaults', async (t) => {
  const policy = parseResponsePolicy('rules:\n  r1:\n    detect: { kind: event, events: [logout] }\n    actions:\n      - lockout:\n      - notify:\n')
  t.same(policy.rules[0]!.actions, [{ type: 'lockout', durationSeconds: 900 }, { type: 'notify' }])
})

t.test('mistakes name the file, the line and the problem', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['unknown detector', 'rules:\n  r1:\n    detect: { kind: guess }\n    actions: [notify]\n', /response\.yaml:3: rules\.r1\.detect\.kind: must be one of/],
    ['unknown event type', 'rules:\n  r1:\n    detect: { kind: event, events: [login_maybe] }\n    actions: [notify]\n', /response\.yaml:3: .*events\.0: must be one of/],
    [
      'an address rule that would lock a subject',
      'rules:\n  r1:\n    detect: { kind: ip_subjects, events: [login_failure], threshold: 3, windowSeconds: 60 }\n    actions:\n      - lockout\n',
      /response\.yaml:5: .*lockout needs a subject/,
    ],
    ['a zero threshold', 'rules:\n  r1:\n    detect: { kind: subject_failures, events: [login_failure], threshold: 0, windowSeconds: 60 }\n    actions: [notify]\n', /threshold: must be between 1/],
    ['a negative duration', 'rules:\n  r1:\n    detect: { kind: event, events: [logout] }\n    actions:\n      - lockout: { durationSeconds: -5 }\n', /response\.yaml:5: .*durationSeconds: must be between 1/],
    ['two actions in one entry', 'rules:\n  r1:\n    detect: { kind: event, events: [logout] }\n    actions:\n      - { lockout: {}, notify: {} }\n', /response\.yaml:5: rules\.r1\.actions\.0: must have exactly one of lockout, revoke_sessions/],
    ['no actions', 'rules:\n  r1:\n    detect: { kind: event, events: [logout] }\n    actions: []\n', /response\.yaml:4: rules\.r1\.actions: must not be an empty list/],
    ['an unknown key', 'rules:\n  r1:\n    detect: { kind: event, events: [logout] }\n    actions: [notify]\n    severity: high\n', /response\.yaml:5: .*unknown key "severity"/],
    ['a risk rule with nothing to look for', 'rules:\n  r1:\n    detect: { kind: risk_findings }\n    actions: [notify]\n', /needs reasons or behaviourAnomalyAtLeast/],
    ['a bad rule name', 'rules:\n  Bad-Name:\n    detect: { kind: event, events: [logout] }\n    actions: [notify]\n', /response\.yaml:2: rules\.Bad-Name: must be a rule name: lower case letters, digits and _, starting with a letter \(got "Bad-Name"\)/],
    ['an unknown action', 'rules:\n  r1:\n    detect: { kind: event, events: [logout] }\n    actions:\n      - lockdown: { durationSeconds: 9 }\n', /response\.yaml:5: rules\.r1\.actions\.0\.lockdown: unknown key "lockdown" \(expected one of lockout,/],
    ['settings on an action that has none', 'rules:\n  r1:\n    detect: { kind: event, events: [logout] }\n    actions:\n      - revoke_sessions: { durationSeconds: 4 }\n', /response\.yaml:5: .*revoke_sessions\.durationSeconds: unknown key "durationSeconds" \(none is allowed here\)/],
    ['a detector without its kind', 'rules:\n  r1:\n    detect: { events: [logout] }\n    actions: [notify]\n', /response\.yaml:3: rules\.r1\.detect: missing required key "kind"/],
  ]
  for (const [name, text, message] of cases) t.throws(() => parseResponsePolicy(text), message, name)
})
