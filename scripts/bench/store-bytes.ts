/**
 * How well the embedded store's byte accounting matches the heap: decides for distinct subjects (ids of
 * --id-length characters) on the embedded store with a bound too large to evict, then compares the heap's growth
 * (after full collections) with the store's accounted bytes. The *_BYTES constants in src/store/memory-store.ts are
 * chosen so that the ratio stays near 1.
 *
 *   tsc -p tsconfig.bench.json && node --expose-gc dist/scripts/bench/store-bytes.js [--subjects 20000] [--id-length 256]
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/config.js'
import type { MemoryStateStore } from '../../src/store/memory-store.js'
import { ROOT } from './paths.js'

const { values } = parseArgs({ options: { subjects: { type: 'string' }, 'id-length': { type: 'string' } } })
const subjects = Number(values.subjects ?? 20_000)
const idLength = Number(values['id-length'] ?? 256)
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with node --expose-gc')

const heap = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const env = { PDP_POLICY_DIR: join(ROOT, 'policies'), PDP_DECISION_LOG: 'off', LOG_LEVEL: 'warn', PDP_STORE_MAX_BYTES: String(16 * 1024 ** 3), PDP_STORE_MAX_KEYS: '100000000' }
const app = await buildApp({ config: loadConfig(env), logger: false })
await app.ready()
const store = app.store as MemoryStateStore
const authTime = Math.floor(Date.now() / 1000) - 60
const decide = (i: number) => {
  const id = `${i}-`.padEnd(idLength, 'x')
  return app.pdp.decide({
    subject: { id, tenant: 'acme', roles: ['employee'] },
    action: 'read',
    resource: { type: 'documents', id: `d${i}`, attributes: { owner: id } },
    context: { ip: '81.2.69.142', device: { id: `device-${i}`, managed: true, encrypted: true, osUpToDate: true }, session: { id: `session-${i}`, authTime, amr: ['pwd'] } },
    // As from a gateway authenticated with pdp:decide: an anonymous caller's subjects learn no state, so nothing would be stored.
  }, { callerTrusted: true })
}
// Warm-up: geolocation, policy caches and code paths, so that the measured growth is the store's.
for (let i = 0; i < 2000; i++) await decide(-1 - i)
const heapBefore = heap()
const bytesBefore = store.bytes
for (let i = 0; i < subjects; i++) await decide(i)
const grown = heap() - heapBefore
const accounted = store.bytes - bytesBefore
console.log(`${subjects} subjects, ids of ${idLength} characters, ${store.size} keys of ${store.owners} owners`)
console.log(`heap growth ${Math.round(grown / 1024)} KiB, accounted ${Math.round(accounted / 1024)} KiB, heap/accounted ${(grown / accounted).toFixed(2)}`)
console.log(`per subject: heap ${Math.round(grown / subjects)} B, accounted ${Math.round(accounted / subjects)} B`)
// The store's own share of that growth: what emptying it frees (the warm-up subjects' state included, as in its account).
const held = store.bytes
const before = heap()
await store.close()
const freed = before - heap()
console.log(`emptying the store frees ${Math.round(freed / 1024)} KiB of ${Math.round(held / 1024)} KiB accounted: freed/accounted ${(freed / held).toFixed(2)}`)
await app.close()
