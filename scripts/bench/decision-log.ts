/**
 * The decision log's own cost, in process: decision-log entries made by the PDP deciding the bench's example workload
 * (subjects with roles and attributes, resources, risk with its signals), then N of them written through the audit
 * log to a file, yielding to the event loop every 64 lines (--every) as a server between requests does, and closed (flushed).
 * Prints µs of process CPU (user + system, every thread: formatting and the file writes) per line and the bytes written,
 * and what the explorer's ring (fed every decision, log on or off) costs per decision.
 *
 *   tsc -p tsconfig.bench.json && node dist/scripts/bench/decision-log.js [--lines 200000] [--entries 2000] [--every 64]
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp } from '../../src/app.js'
import { createAuditLog, redaction } from '../../src/audit/audit-log.js'
import { loadConfig } from '../../src/config/config.js'
import type { DecisionLogEntry } from '../../src/engine/ports.js'
import { DecisionRing } from '../../src/explorer/ring.js'
import { ROOT } from './paths.js'
import { exampleWorkload } from './workload.js'

const { values } = parseArgs({ options: { lines: { type: 'string' }, entries: { type: 'string' }, every: { type: 'string' } } })
const lines = Number(values.lines ?? 200_000)
const entryCount = Number(values.entries ?? 2000)
const every = Number(values.every ?? 64)
const TOKEN = 'bench-caller-token-0123456789abcdef'

/** Entries exactly as the engine hands them to the log, from real decisions (trusted caller: risk learns and scores). */
async function entries(): Promise<DecisionLogEntry[]> {
  const config = loadConfig({ PDP_POLICY_DIR: join(ROOT, 'policies'), PDP_DECISION_LOG: 'off', PDP_DECIDE_AUTH: 'token', PDP_ADMIN_TOKEN: TOKEN })
  const app = await buildApp({ config, logger: false })
  await app.ready()
  const made: DecisionLogEntry[] = []
  app.onDecision((entry) => made.push(entry))
  const { bodies } = exampleWorkload(200, { bodies: entryCount })
  for (const [i, payload] of bodies.entries()) {
    await app.inject({ method: 'POST', url: '/decide', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'x-request-id': `req-${i}` }, payload })
  }
  await app.close()
  return made
}

const made = await entries()
const verdicts = new Map<string, number>()
for (const e of made) verdicts.set(e.decision.decision, (verdicts.get(e.decision.decision) ?? 0) + 1)
const dir = await mkdtemp(join(tmpdir(), 'pdp-bench-log-'))
try {
  const file = join(dir, 'decisions.log')
  let dropped = 0
  const log = createAuditLog({ destination: file, redactPaths: ['subject.attributes.ssn'], onDrop: (n) => (dropped = n) })
  const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve))
  // Warm-up: the same code paths optimized before the clock starts.
  for (let i = 0; i < 5000; i++) {
    const entry = made[i % made.length]!
    log.write(() => entry)
    if (i % every === every - 1) await yieldNow()
  }
  await yieldNow()
  const before = process.cpuUsage()
  const wallBefore = performance.now()
  for (let i = 0; i < lines; i++) {
    const entry = made[i % made.length]!
    log.write(() => entry)
    if (i % every === every - 1) await yieldNow()
  }
  await log.close()
  const cpu = process.cpuUsage(before)
  const wall = performance.now() - wallBefore
  const size = (await stat(file)).size
  console.log(`entries: ${made.length} from the example workload (${[...verdicts].map(([v, n]) => `${v} ${n}`).join(', ')})`)
  console.log(`lines: ${lines} (+5000 warm-up), file ${(size / 1024 / 1024).toFixed(1)} MB, ${Math.round(size / (lines + 5000))} bytes per line, ${dropped} dropped`)
  console.log(`CPU per line: ${((cpu.user + cpu.system) / lines).toFixed(2)} µs (user ${(cpu.user / lines).toFixed(2)}, system ${(cpu.system / lines).toFixed(2)}); wall ${((wall * 1000) / lines).toFixed(2)} µs`)
  // The ring as the explorer feeds it: default size and statistics window, entries stamped a few per millisecond.
  const ring = new DecisionRing(1000, redaction([]), 15)
  const start = Date.now()
  const stamped = made.map((entry, i) => ({ ...entry, time: start + i / 4 }))
  for (let i = 0; i < 50_000; i++) ring.push(stamped[i % stamped.length]!)
  const ringBefore = process.cpuUsage()
  for (let i = 0; i < lines; i++) {
    const entry = stamped[i % stamped.length]!
    ring.push({ ...entry, decision: { ...entry.decision, decisionId: `${entry.decision.decisionId}-${i}` }, time: start + i / 4 })
  }
  const ringCpu = process.cpuUsage(ringBefore)
  console.log(`explorer ring: ${((ringCpu.user + ringCpu.system) / lines).toFixed(2)} µs per decision (entry copy with a fresh decision id included)`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
