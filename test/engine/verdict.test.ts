import t from 'tap'
import { combineGates, combineVerdict, consultsPolicy, NO_GATES, type GateVerdict, type VerdictInputs, type VerdictOutcome } from '../../src/engine/verdict.js'
import type { RiskAssessment, StepUp } from '../../src/engine/types.js'

const assessment: RiskAssessment = { score: 30, level: 'low', sensitivity: 'medium', multiplier: 1, signals: [] }
const lowStepUp: StepUp = { level: 'low', methods: ['totp'], maxAge: 3600, acrValues: ['aal2'] }
const highStepUp: StepUp = { level: 'high', methods: ['webauthn'], maxAge: 300, acrValues: ['aal3'] }

const riskAllow = { verdict: 'allow', reasons: ['new_device'], assessment } as const
const riskSatisfied = { verdict: 'allow', reasons: ['step_up_satisfied', 'new_device'], assessment } as const
const riskLow = { verdict: 'step_up', reasons: ['step_up_required', 'new_device'], assessment, stepUp: lowStepUp } as const
const riskHigh = { verdict: 'step_up', reasons: ['step_up_required', 'impossible_travel'], assessment, stepUp: highStepUp } as const
const riskDeny = { verdict: 'deny', reasons: ['risk_too_high', 'new_device'], assessment } as const

const gates = (g: Partial<GateVerdict>): GateVerdict => ({ ...NO_GATES, ...g })
const idleMedium = gates({ stepUp: { reason: 'session_expired', level: 'medium' } })
const idleLow = gates({ stepUp: { reason: 'session_expired', level: 'low' } })

const CASES: [string, VerdictInputs, VerdictOutcome][] = [
  // The store failed: closed denies whatever else is known; open asks for a high step-up over a policy allow.
  ['store failed closed', { store: 'failed_closed', gates: NO_GATES }, { verdict: 'deny', reasons: ['store_unavailable'] }],
  ['store failed closed, policy would allow', { store: 'failed_closed', gates: NO_GATES, policy: 'allow' }, { verdict: 'deny', reasons: ['store_unavailable'] }],
  ['store failed open, policy allows', { store: 'failed_open', gates: NO_GATES, policy: 'allow' }, { verdict: 'step_up', reasons: ['store_unavailable', 'policy_allow'], stepUpLevel: 'high' }],
  ['store failed open, policy denies', { store: 'failed_open', gates: NO_GATES, policy: 'deny' }, { verdict: 'deny', reasons: ['policy_deny'] }],
  // A gate's deny decides alone.
  ['gate denies', { store: 'ok', gates: gates({ deny: 'token_revoked' }) }, { verdict: 'deny', reasons: ['token_revoked'] }],
  ['gate denies over a policy allow and a step-up', { store: 'ok', gates: gates({ deny: 'account_locked', stepUp: { reason: 'suspicious_ip', level: 'high' } }), policy: 'allow', risk: riskAllow }, { verdict: 'deny', reasons: ['account_locked'] }],
  // The policy alone.
  ['policy allows', { store: 'ok', gates: NO_GATES, policy: 'allow' }, { verdict: 'allow', reasons: ['policy_allow'] }],
  ['policy denies', { store: 'ok', gates: NO_GATES, policy: 'deny' }, { verdict: 'deny', reasons: ['policy_deny'] }],
  ['no policy matches', { store: 'ok', gates: NO_GATES, policy: 'none' }, { verdict: 'deny', reasons: ['no_matching_policy'] }],
  ['policy errs', { store: 'ok', gates: NO_GATES, policy: 'error' }, { verdict: 'deny', reasons: ['policy_error'] }],
  // Just-in-time grants.
  ['granted role, policy allows', { store: 'ok', gates: gates({ roles: ['editor'] }), policy: 'allow' }, { verdict: 'allow', reasons: ['policy_allow', 'jit_grant'] }],
  ['granted role, policy denies', { store: 'ok', gates: gates({ roles: ['editor'] }), policy: 'deny' }, { verdict: 'deny', reasons: ['policy_deny'] }],
  ['granted permission, no policy matches', { store: 'ok', gates: gates({ permissionGranted: true }), policy: 'none' }, { verdict: 'allow', reasons: ['jit_grant'] }],
  ['granted permission and role, no policy matches', { store: 'ok', gates: gates({ roles: ['editor'], permissionGranted: true }), policy: 'none' }, { verdict: 'allow', reasons: ['jit_grant'] }],
  ['granted permission, policy denies explicitly', { store: 'ok', gates: gates({ permissionGranted: true }), policy: 'deny' }, { verdict: 'deny', reasons: ['policy_deny'] }],
  ['store failed open, no policy matches (grants unread)', { store: 'failed_open', gates: NO_GATES, policy: 'none' }, { verdict: 'deny', reasons: ['no_matching_policy'] }],
  // Risk over a policy allow.
  ['risk allows', { store: 'ok', gates: NO_GATES, policy: 'allow', risk: riskAllow }, { verdict: 'allow', reasons: ['policy_allow', 'new_device'], risk: assessment }],
  ['risk asks a step-up', { store: 'ok', gates: NO_GATES, policy: 'allow', risk: riskLow }, { verdict: 'step_up', reasons: ['step_up_required', 'new_device', 'policy_allow'], risk: assessment, stepUp: lowStepUp }],
  ['risk denies', { store: 'ok', gates: NO_GATES, policy: 'allow', risk: riskDeny }, { verdict: 'deny', reasons: ['risk_too_high', 'new_device', 'policy_allow'], risk: assessment }],
  ['risk is not consulted when the policy denies', { store: 'ok', gates: NO_GATES, policy: 'deny', risk: riskDeny }, { verdict: 'deny', reasons: ['policy_deny'] }],
  ['risk allows a granted role', { store: 'ok', gates: gates({ roles: ['editor'] }), policy: 'allow', risk: riskAllow }, { verdict: 'allow', reasons: ['policy_allow', 'jit_grant', 'new_device'], risk: assessment }],
  // Gates' step-ups.
  ['gate step-up over a risk allow', { store: 'ok', gates: idleMedium, policy: 'allow', risk: riskAllow }, { verdict: 'step_up', reasons: ['session_expired', 'policy_allow', 'new_device'], risk: assessment, stepUpLevel: 'medium' }],
  ['gate step-up without risk', { store: 'ok', gates: idleMedium, policy: 'allow' }, { verdict: 'step_up', reasons: ['session_expired', 'policy_allow'], stepUpLevel: 'medium' }],
  ['gate step-up drops a satisfied risk step-up', { store: 'ok', gates: idleMedium, policy: 'allow', risk: riskSatisfied }, { verdict: 'step_up', reasons: ['session_expired', 'policy_allow', 'new_device'], risk: assessment, stepUpLevel: 'medium' }],
  ['gate step-up higher than the risk one wins', { store: 'ok', gates: idleMedium, policy: 'allow', risk: riskLow }, { verdict: 'step_up', reasons: ['session_expired', 'step_up_required', 'new_device', 'policy_allow'], risk: assessment, stepUp: lowStepUp, stepUpLevel: 'medium' }],
  ['gate step-up no higher than the risk one adds its reason', { store: 'ok', gates: idleLow, policy: 'allow', risk: riskHigh }, { verdict: 'step_up', reasons: ['step_up_required', 'impossible_travel', 'policy_allow', 'session_expired'], risk: assessment, stepUp: highStepUp }],
  ['gate step-up does not lift a risk deny', { store: 'ok', gates: idleMedium, policy: 'allow', risk: riskDeny }, { verdict: 'deny', reasons: ['risk_too_high', 'new_device', 'policy_allow'], risk: assessment }],
  ['gate step-up does not lift a policy deny', { store: 'ok', gates: idleMedium, policy: 'deny' }, { verdict: 'deny', reasons: ['policy_deny'] }],
]

for (const [name, inputs, expected] of CASES) {
  t.test(name, async (t) => {
    t.equal(consultsPolicy(inputs.store, inputs.gates), inputs.store !== 'failed_closed' && inputs.gates.deny === undefined)
    t.strictSame(combineVerdict(inputs), expected)
  })
}

t.test('the policy must be consulted unless the answer is already a deny', async (t) => {
  t.throws(() => combineVerdict({ store: 'ok', gates: NO_GATES }), TypeError)
})

t.test('gates combine: the first deny, every granted role, the highest step-up (the first of equals)', async (t) => {
  t.strictSame(combineGates([]), NO_GATES)
  t.strictSame(
    combineGates([
      { roles: ['a'], stepUp: { reason: 'session_expired', level: 'medium' } },
      { deny: 'account_locked' },
      { deny: 'ip_blocked', roles: ['b'], permissionGranted: true, stepUp: { reason: 'suspicious_ip', level: 'medium' } },
      { stepUp: { reason: 'security_step_up', level: 'high' } },
    ]),
    { roles: ['a', 'b'], permissionGranted: true, deny: 'account_locked', stepUp: { reason: 'security_step_up', level: 'high' } },
  )
})
