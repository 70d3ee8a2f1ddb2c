/**
 * Memory at scale: the PDP on a generated policy of 50,000 lines after deciding for 100,000 distinct
 * subjects on the embedded store (each with a device, a session and a location), in one process.
 * Prints the resident set size, the heap and the store's live keys, after a full garbage collection when
 * --expose-gc allows it. `npm run bench:memory` compiles it with the PDP and runs it without a loader.
 *
 *   npm run bench:memory -- [--subjects 100000] [--lines 50000] [--max-keys N] [--max-bytes N]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/config.js'
import type { MemoryStateStore } from '../../src/store/memory-store.js'
import { generatePolicy, writePolicyDir } from './generate-policy.js'


const { values } = parseArgs({ options: { subjects: { type: 'string' }, lines: { type: 'string' }, 'max-keys': { type: 'string' }, 'max-bytes': { type: 'string' } } })
const subjects = Number(values.subjects ?? 100_000)
const lines = Number(values.lines ?? 50_000)
const IPS = ['81.2.69.142', '103.86.96.100', '8.8.8.8', '5.9.0.1', '133.242.0.1', '200.160.0.8']

const mb = (bytes: number) => `${Math.round(bytes / 1024 / 1024)} MB`
const collect = () => (globalThis as { gc?: () => void }).gc?.()
let keys = () => 0
const report = (label: string) => {
  collect()
  const m = process.memoryUsage()
  console.log(`${label.padEnd(44)} rss ${mb(m.rss).padStart(7)}  heap used ${mb(m.heapUsed).padStart(7)}  external ${mb(m.external).padStart(6)}  store keys ${String(keys()).padStart(8)}`)
}

report('process start')
const dir = await mkdtemp(join(tmpdir(), 'pdp-memory-'))
try {
  const policy = generatePolicy({ lines, subjects: 5000, roles: 500 })
  await writePolicyDir(dir, policy)
  const env: Record<string, string> = { PDP_POLICY_DIR: dir, PDP_DECISION_LOG: 'off', LOG_LEVEL: 'warn' }
  if (values['max-keys'] !== undefined) env.PDP_STORE_MAX_KEYS = values['max-keys']
  if (values['max-bytes'] !== undefined) env.PDP_STORE_MAX_BYTES = values['max-bytes']
  const app = await buildApp({ config: loadConfig(env), logger: false })
  await app.ready()
  keys = () => (app.store as MemoryStateStore).size
  report(`policy loaded (${policy.counts.lines} lines)`)
  const authTime = Math.floor(Date.now() / 1000) - 60
  for (let i = 0; i < subjects; i++) {
    const known = policy.subjects[i % policy.subjects.length]!
    await app.pdp.decide({
      subject: { id: `user-${i}`, tenant: known.tenant, roles: known.roles, attributes: { team: known.team } },
      action: 'read',
      resource: { type: 'documents', id: `d${i}`, attributes: { owner: `user-${i}` } },
      context: {
        ip: IPS[i % IPS.length]!,
        device: { id: `device-${i}`, managed: true, encrypted: true, osUpToDate: true },
        session: { id: `session-${i}`, authTime, amr: ['pwd', 'otp'] },
      },
    })
    if ((i + 1) % 25_000 === 0) report(`${i + 1} distinct subjects decided`)
  }
  await app.close()
} finally {
  await rm(dir, { recursive: true, force: true })
}
