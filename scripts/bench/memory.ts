/**
 * Memory at scale: the PDP on a generated policy of 50,000 lines deciding for distinct subjects on the embedded
 * store (each with a device, a session and a location), in one process. At each checkpoint (10,000, 50,000 and
 * 100,000 subjects by default), after a full garbage collection when --expose-gc allows it, it prints the
 * resident set size, the heap, the store's live keys and accounted bytes, and the heap per subject whose state
 * the store holds. `npm run bench:memory` compiles it with the PDP and runs it without a loader.
 *
 *   npm run bench:memory -- [--subjects 100000] [--checkpoints 10000,50000,100000] [--lines 50000]
 *                           [--max-keys N] [--max-bytes N] [--hold-all] [--idle-seconds 10]
 *
 * --hold-all raises the store's bounds so that it keeps every subject's state (the per-subject cost without
 * eviction); otherwise the store's defaults (or --max-keys / --max-bytes) apply and it evicts beyond them.
 * After the last subject it waits --idle-seconds without forcing a collection and prints the RSS again: what a
 * replica between bursts holds once V8 has returned the heap pages it no longer uses.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/config.js'
import type { MemoryStateStore } from '../../src/store/memory-store.js'
import { generatePolicy, writePolicyDir } from './generate-policy.js'

const { values } = parseArgs({
  options: {
    subjects: { type: 'string' },
    checkpoints: { type: 'string' },
    lines: { type: 'string' },
    'max-keys': { type: 'string' },
    'max-bytes': { type: 'string' },
    'hold-all': { type: 'boolean' },
    'idle-seconds': { type: 'string' },
  },
})
const subjects = Number(values.subjects ?? 100_000)
const checkpoints = new Set((values.checkpoints ?? '10000,50000,100000').split(',').map(Number).filter((n) => n <= subjects))
const lines = Number(values.lines ?? 50_000)
const idleSeconds = Number(values['idle-seconds'] ?? 10)
const IPS = ['81.2.69.142', '103.86.96.100', '8.8.8.8', '5.9.0.1', '133.242.0.1', '200.160.0.8']
// Far above what 100,000 subjects take, so that nothing is evicted.
const HOLD_ALL = { keys: '100000000', bytes: String(64 * 1024 ** 3) }

const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`
const collect = () => (globalThis as { gc?: () => void }).gc?.()

interface Point {
  label: string
  rss: number
  heapUsed: number
  external: number
  keys: number
  owners: number
  storeBytes: number
}

const points: Point[] = []
let store: MemoryStateStore | undefined
const measure = (label: string): Point => {
  collect()
  const m = process.memoryUsage()
  const point = { label, rss: m.rss, heapUsed: m.heapUsed, external: m.external, keys: store?.size ?? 0, owners: store?.owners ?? 0, storeBytes: store?.bytes ?? 0 }
  points.push(point)
  console.log(`${label.padEnd(34)} rss ${mb(point.rss).padStart(7)}  heap used ${mb(point.heapUsed).padStart(7)}  external ${mb(point.external).padStart(6)}  store keys ${String(point.keys).padStart(8)}`)
  return point
}

console.log(`memory: Node ${process.version}, ${lines} policy lines, ${subjects} subjects, ${values['hold-all'] ? 'store bounds raised (--hold-all)' : 'store bounds: ' + (values['max-keys'] || values['max-bytes'] ? `--max-keys ${values['max-keys'] ?? 'default'}, --max-bytes ${values['max-bytes'] ?? 'default'}` : 'defaults')}${(globalThis as { gc?: unknown }).gc ? '' : ' (no --expose-gc: figures include garbage)'}`)
measure('process start')
const dir = await mkdtemp(join(tmpdir(), 'pdp-memory-'))
let keysPerSubject = NaN
let baseline: Point | undefined
try {
  const policy = generatePolicy({ lines, subjects: 5000, roles: 500 })
  await writePolicyDir(dir, policy)
  const env: Record<string, string> = { PDP_POLICY_DIR: dir, PDP_DECISION_LOG: 'off', LOG_LEVEL: 'warn' }
  if (values['max-keys'] !== undefined) env.PDP_STORE_MAX_KEYS = values['max-keys']
  if (values['max-bytes'] !== undefined) env.PDP_STORE_MAX_BYTES = values['max-bytes']
  if (values['hold-all']) {
    env.PDP_STORE_MAX_KEYS = HOLD_ALL.keys
    env.PDP_STORE_MAX_BYTES = HOLD_ALL.bytes
  }
  const app = await buildApp({ config: loadConfig(env), logger: false })
  await app.ready()
  store = app.store as MemoryStateStore
  measure(`policy loaded (${policy.counts.lines} lines)`)
  const authTime = Math.floor(Date.now() / 1000) - 60
  const decide = (i: number) => {
    const known = policy.subjects[i % policy.subjects.length]!
    return app.pdp.decide({
      subject: { id: `user-${i}`, tenant: known.tenant, roles: known.roles, attributes: { team: known.team } },
      action: 'read',
      resource: { type: 'documents', id: `d${i}`, attributes: { owner: `user-${i}` } },
      context: {
        ip: IPS[i % IPS.length]!,
        device: { id: `device-${i}`, managed: true, encrypted: true, osUpToDate: true },
        session: { id: `session-${i}`, authTime, amr: ['pwd', 'otp'] },
      },
      // As from a gateway authenticated with pdp:decide: only a vouched-for subject's state is learned and kept.
    }, { callerTrusted: true })
  }
  // The first decision opens geoip-lite's data files and warms the code: the baseline comes after it.
  await decide(0)
  baseline = measure('after one decision (geoip opened)')
  const beforeKeys = store.size
  for (let i = 1; i <= subjects; i++) {
    await decide(i)
    if (i === 100) keysPerSubject = (store.size - beforeKeys) / 100
    if (checkpoints.has(i)) measure(`${i} distinct subjects decided`)
  }
  // A replica between bursts: V8 hands free heap pages back on its own once allocation stops; no collection is forced.
  await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000))
  const idle = process.memoryUsage()
  console.log(`${`then ${idleSeconds} s idle`.padEnd(34)} rss ${mb(idle.rss).padStart(7)}  heap used ${mb(idle.heapUsed).padStart(7)}  (no collection forced)`)
  await app.close()
} finally {
  await rm(dir, { recursive: true, force: true })
}

// Subjects whose state the store holds: its owners (each subject's keys share one, its hash tag).
console.log('')
console.log(`one subject's state: ${keysPerSubject} store keys`)
console.log('| subjects decided | subjects held | RSS | heap used | external | store keys | store accounted | heap per subject held |')
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const point of points.filter((p) => p.label.endsWith('decided'))) {
  const decided = Number(point.label.split(' ')[0])
  const held = Math.min(decided, point.owners)
  const perSubject = (point.heapUsed - baseline!.heapUsed) / held
  console.log(`| ${decided} | ${held} | ${mb(point.rss)} | ${mb(point.heapUsed)} | ${mb(point.external)} | ${point.keys} | ${mb(point.storeBytes)} | ${(perSubject / 1024).toFixed(2)} KB |`)
}
