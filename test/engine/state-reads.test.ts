import t from 'tap'
import { assemblePdp } from '../../src/compose.js'
import type { StateStore, StoreBatch } from '../../src/engine/ports.js'
import { loadPolicyBundle } from '../../src/engine/policy/bundle.js'
import { riskKeys } from '../../src/engine/risk/keys.js'
import { identityKeys } from '../../src/identity/keys.js'
import { MemoryStateStore } from '../../src/store/memory-store.js'
import { EXAMPLE_POLICIES, manualClock, trustedContext } from '../helpers/build.js'

/** A store that counts the reads of each key, by operation: `hGetAll risk:dev:alice:laptop-1` → 1. */
function countingStore(inner: StateStore) {
  const reads = new Map<string, number>()
  const store: StateStore = {
    kind: inner.kind,
    ping: () => inner.ping(),
    close: () => inner.close(),
    batch(): StoreBatch {
      const batch = inner.batch()
      return new Proxy(batch, {
        get(target, name: keyof StoreBatch) {
          const op = target[name]
          if (typeof op !== 'function' || !['get', 'hGetAll', 'sMembers'].includes(name)) return typeof op === 'function' ? op.bind(target) : op
          return (key: string, ...rest: unknown[]) => {
            reads.set(`${name} ${key}`, (reads.get(`${name} ${key}`) ?? 0) + 1)
            return (op as (...args: unknown[]) => unknown).call(target, key, ...rest)
          }
        },
      })
    },
  }
  return { store, reads }
}

t.test('a decision reads the device record once, for the sessions gate and the device-trust signal alike', async (t) => {
  const bundle = await loadPolicyBundle(EXAMPLE_POLICIES)
  const clock = manualClock()
  const { store, reads } = countingStore(new MemoryStateStore({ now: clock.now }))
  const pdp = assemblePdp({ policy: { current: bundle }, now: clock.now, defaultTenant: 'default', store, geo: { lookup: () => undefined } })
  const request = {
    subject: { id: 'alice', roles: ['employee'], tenant: 'acme' },
    context: trustedContext(clock.now()),
  }
  const first = await pdp.decide({ ...request, action: 'create', resource: { type: 'documents' } }, { callerTrusted: true })
  t.equal(first.decision, 'allow', 'the first decision registers the device and the session')
  reads.clear()
  clock.advance(60_000)
  const items = ['create', 'create', 'create'].map((action, i) => ({ action, resource: { type: 'documents', id: `d${i}` } }))
  const decisions = await pdp.decideBatch(request, items, { callerTrusted: true })
  t.same(
    decisions.map((d) => d.decision),
    ['allow', 'allow', 'allow'],
  )
  t.equal(reads.get(`hGetAll ${riskKeys.device('alice', 'laptop-1')}`), 1, 'one read of the device for the whole batch')
  t.equal(reads.get(`hGetAll ${identityKeys.session('alice', 's-1')}`), 1, 'one of the session')
  t.same(
    [...reads].filter(([, n]) => n !== 1),
    [],
    'and no state value read twice',
  )
})
