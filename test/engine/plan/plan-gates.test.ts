import t from 'tap'
import { createPdp } from '../../../src/engine/pdp.js'
import type { DecisionLogEntry, Gate } from '../../../src/engine/ports.js'
import { loadPolicyBundle } from '../../../src/engine/policy/bundle.js'
import { MemoryStateStore } from '../../../src/store/memory-store.js'
import { EXAMPLE_POLICIES } from '../../helpers/build.js'

const bundle = await loadPolicyBundle(EXAMPLE_POLICIES)
const now = Date.parse('2026-03-01T12:00:00Z')
const input = { subject: { id: 'alice', tenant: 'acme' }, action: 'read', resource: { type: 'documents' } }

t.test('a gate that denies (a locked account) makes the plan always_denied with its reason, as a decision', async (t) => {
  const locked: Gate = { name: 'lock', prepare: () => () => ({ deny: 'account_locked' }) }
  const log: DecisionLogEntry[] = []
  const pdp = createPdp({ policy: { current: bundle }, now: () => now, defaultTenant: 'default', store: new MemoryStateStore({ now: () => now }), gates: [locked], decisionLog: { write: (make) => log.push(make()) } })
  const plan = await pdp.plan(input, { requestId: 'req-1' })
  t.match(plan, { plan: 'always_denied', reasons: ['account_locked'], policyVersion: bundle.version })
  t.notOk(plan.filter)
  t.match(log, [{ source: 'plan', requestId: 'req-1', decision: { decision: 'deny', decisionId: plan.decisionId }, plan: { kind: 'always_denied' } }])
})

t.test('a token the PDP cannot verify plans always_denied (a revoked one is a gate deny, as above)', async (t) => {
  const pdp = createPdp({
    policy: { current: bundle },
    now: () => now,
    defaultTenant: 'default',
    tokens: { verify: async () => ({ ok: false, reason: 'token_expired', detail: 'expired' }) },
  })
  t.match(await pdp.plan({ token: 'a.b.c', action: 'read', resource: { type: 'documents' } }), { plan: 'always_denied', reasons: ['token_expired'] })
})

t.test('a store that fails closed plans always_denied; failing open asks the decision\'s step-up', async (t) => {
  const failing = new MemoryStateStore({ now: () => now })
  const batch = failing.batch.bind(failing)
  failing.batch = () => Object.assign(batch(), { exec: () => Promise.reject(new Error('down')) })
  const gate: Gate = { name: 'noop', prepare: () => () => ({}) }
  const closed = createPdp({ policy: { current: bundle }, now: () => now, defaultTenant: 'default', store: failing, gates: [gate] })
  t.match(await closed.plan(input), { plan: 'always_denied', reasons: ['store_unavailable'] })
  const open = createPdp({
    policy: { current: bundle },
    now: () => now,
    defaultTenant: 'default',
    store: failing,
    gates: [gate],
    storeFailure: 'open',
    stepUpFor: (_b, level) => ({ level, methods: ['webauthn'], maxAge: 300, acrValues: [] }),
  })
  const decided = await open.decide({ ...input, resource: { type: 'documents', id: 'd1' } })
  t.match(await open.plan(input), { plan: 'always_allowed', stepUp: decided.stepUp, reasons: decided.reasons })
})
