/**
 * The embedded store's CPU per decision, without the rest of the decision: records the batches the PDP queues
 * while it decides twice for each of --subjects distinct subjects (as scenario (b) of the HTTP bench asks about
 * subjects it has seen), then replays them on a fresh store: the first pass's batches to build the state, and the
 * second pass's --rounds times, timed. Prints µs per decision (its batches) and ns per store operation.
 *
 *   tsc -p tsconfig.bench.json && node --expose-gc dist/scripts/bench/store-batch.js [--subjects 20000] [--rounds 5]
 *
 * With --expose-gc each round starts after a full collection, so that one round does not pay for another's garbage.
 */
import { parseArgs } from 'node:util'
import { join } from 'node:path'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/config.js'
import type { StoreBatch } from '../../src/engine/ports.js'
import { MemoryStateStore } from '../../src/store/memory-store.js'
import { ROOT } from './paths.js'

const { values } = parseArgs({ options: { subjects: { type: 'string' }, rounds: { type: 'string' } } })
const subjects = Number(values.subjects ?? 20_000)
const rounds = Number(values.rounds ?? 5)

type Call = [name: keyof StoreBatch, args: unknown[]]
const env = { PDP_POLICY_DIR: join(ROOT, 'policies'), PDP_DECISION_LOG: 'off', LOG_LEVEL: 'warn', PDP_STORE_MAX_BYTES: String(16 * 1024 ** 3), PDP_STORE_MAX_KEYS: '100000000' }
const app = await buildApp({ config: loadConfig(env), logger: false })
await app.ready()
const store = app.store as MemoryStateStore
// Records every operation queued on the app's store, batch by batch, while the batches still run on it.
let recording: Call[][] = []
const batch = store.batch.bind(store)
store.batch = () => {
  const real = batch()
  const calls: Call[] = []
  recording.push(calls)
  return new Proxy(real, {
    get(target, name: keyof StoreBatch) {
      const method = target[name] as (...args: unknown[]) => unknown
      if (name === 'exec') return method.bind(target)
      return (...args: unknown[]) => {
        calls.push([name, args])
        return method.apply(target, args)
      }
    },
  })
}
const authTime = Math.floor(Date.now() / 1000) - 60
const pass = async () => {
  recording = []
  for (let i = 0; i < subjects; i++) {
    await app.pdp.decide({
      subject: { id: `user-${i}`, tenant: 'acme', roles: ['employee'] },
      action: 'read',
      resource: { type: 'documents', id: `d${i}`, attributes: { owner: `user-${i}` } },
      context: { ip: '81.2.69.142', device: { id: `device-${i}`, managed: true, encrypted: true, osUpToDate: true }, session: { id: `session-${i}`, authTime, amr: ['pwd'] } },
    }, { callerTrusted: true })
  }
  return recording
}
const first = await pass()
const second = await pass()
await app.close()

const replay = async (target: MemoryStateStore, batches: Call[][]) => {
  for (const calls of batches) {
    const b = target.batch()
    for (const [name, args] of calls) (b[name] as (...a: unknown[]) => unknown)(...args)
    await b.exec()
  }
}
const ops = second.reduce((n, calls) => n + calls.length, 0)
const fresh = new MemoryStateStore({ maxBytes: 16 * 1024 ** 3, maxKeys: 100_000_000 })
await replay(fresh, first)
await replay(fresh, second)
const times: number[] = []
for (let r = 0; r < rounds; r++) {
  ;(globalThis as { gc?: () => void }).gc?.()
  const start = process.hrtime.bigint()
  await replay(fresh, second)
  times.push(Number(process.hrtime.bigint() - start) / 1e3)
}
times.sort((a, b) => a - b)
const median = times[Math.floor(times.length / 2)]!
console.log(`${subjects} subjects seen before, ${second.length} batches, ${ops} operations (${(ops / subjects).toFixed(1)} per decision)`)
console.log(`median of ${rounds} rounds: ${(median / subjects).toFixed(2)} µs per decision's batches, ${((median * 1e3) / ops).toFixed(0)} ns per operation (rounds: ${times.map((t) => (t / subjects).toFixed(2)).join(', ')} µs)`)
