import t from 'tap'
import { appendFile, mkdir, open, readFile, rm, writeFile, cp } from 'node:fs/promises'
import { join } from 'node:path'
import { buildPolicyBundle, loadPolicyBundle } from '../../../src/engine/policy/bundle.js'
import { PolicySource } from '../../../src/engine/policy/policy-source.js'
import { EXAMPLE_POLICIES, manualClock, policyCopy } from '../../helpers/build.js'

// Timers are far out (or fire only to find the manual clock unmoved): the test drives check() itself.
const WATCH = { debounceMs: 60_000, settleMs: 2000, pollMs: 60_000 }

async function watchedSource(t: { teardown(fn: () => unknown): void }, dir: string, clock = manualClock()) {
  const source = await PolicySource.open({ dir, build: buildPolicyBundle, now: clock.now })
  t.teardown(() => source.close())
  source.watch(WATCH)
  await source.check()
  return { source, clock }
}

t.test('a change is activated only after it has been stable for the settle window of the injected clock', async (t) => {
  const dir = await policyCopy(t)
  const { source, clock } = await watchedSource(t, dir)
  const first = source.status().activeRevision
  t.equal(source.status().watch.state, 'watching')

  const csv = join(dir, 'policy.csv')
  const full = `${await readFile(csv, 'utf8')}g, erin, employee, acme\np, employee, acme, documents, delete, true, deny\n`
  const cut = full.indexOf('p, employee, acme, documents, delete')
  const handle = await open(csv, 'w')
  await handle.write(full.slice(0, cut))
  await source.check()
  t.ok(source.status().watch.pendingSince, 'the half-written file is seen')
  t.equal(source.status().activeRevision, first, 'and not activated')

  clock.advance(1500)
  await handle.write(full.slice(cut))
  await handle.close()
  await source.check()
  t.equal(source.status().activeRevision, first, 'the completed file starts its own settle window')
  clock.advance(1999)
  await source.check()
  t.equal(source.status().activeRevision, first, 'one millisecond short of the window')
  clock.advance(1)
  await source.check()
  t.equal(source.status().activeRevision, (await loadPolicyBundle(dir)).version, 'the whole file is active')
  t.equal(source.status().watch.pendingSince, undefined)
  t.same(source.status().reloads, { success: 1, failure: 0 }, 'the half file was never loaded')
})

t.test('swap, backup and temporary files never start a load', async (t) => {
  const dir = await policyCopy(t)
  const { source, clock } = await watchedSource(t, dir)
  const text = 'p, nobody, *, documents, read, true, allow\n'
  for (const name of ['.policy.csv.swp', 'policy.csv~', 'policy.csv.tmp', '.#policy.csv', '4913']) await writeFile(join(dir, name), text)
  await source.check()
  clock.advance(10_000)
  await source.check()
  t.equal(source.status().watch.pendingSince, undefined)
  t.same(source.status().reloads, { success: 0, failure: 0 })
})

t.test('a broken edit settles too and is reported once, not on every check', async (t) => {
  const dir = await policyCopy(t)
  const { source, clock } = await watchedSource(t, dir)
  await appendFile(join(dir, 'policy.csv'), '\np, employee, *, documents\n')
  await source.check()
  t.same(source.status().reloads, { success: 0, failure: 0 }, 'nothing is tried before the window')
  clock.advance(2000)
  await source.check()
  await source.check()
  t.same(source.status().reloads, { success: 0, failure: 1 })
  t.match(source.status().lastError, { message: /^policy\.csv:\d+: "p" takes 6 values/ })
})

t.test('a removed directory is reported missing, and followed again once it is back', async (t) => {
  const dir = await policyCopy(t)
  const { source, clock } = await watchedSource(t, dir)
  const first = source.status().activeRevision
  await rm(dir, { recursive: true })
  await source.check()
  t.match(source.status().watch, { state: 'missing', reason: /is missing \(ENOENT\)/ })
  t.equal(source.current.version, first, 'the last good policy stays')

  await mkdir(dir)
  await cp(EXAMPLE_POLICIES, dir, { recursive: true })
  await appendFile(join(dir, 'policy.csv'), '\ng, erin, admin, acme\n')
  await source.check()
  t.equal(source.status().watch.state, 'watching')
  t.ok(source.status().watch.pendingSince, 'the recreated files wait for the settle window')
  clock.advance(2000)
  await source.check()
  t.not(source.status().activeRevision, first)
  t.equal(source.status().activeRevision, (await loadPolicyBundle(dir)).version)
})

t.test('an explicit reload skips the settle window but still reads one consistent version', async (t) => {
  const dir = await policyCopy(t)
  const { source } = await watchedSource(t, dir)
  await appendFile(join(dir, 'policy.csv'), '\ng, erin, admin, acme\n')
  const result = await source.reload()
  t.match(result, { ok: true, changed: true })
  await source.check()
  t.equal(source.status().watch.pendingSince, undefined, 'the watcher has nothing left to do')
  t.same(source.status().reloads, { success: 1, failure: 0 })
})

t.test('files that change while being read are not loaded', async (t) => {
  const { execFileSync } = await import('node:child_process')
  const { readPolicySnapshot, PolicyFilesChanging } = await import('../../../src/engine/policy/policy-snapshot.js')
  const dir = await policyCopy(t)
  const { source } = await watchedSource(t, dir)
  const first = source.status().activeRevision
  const response = await readFile(join(dir, 'response.yaml'), 'utf8')

  // response.yaml as a FIFO holds the read open: opening it for writing returns once the reader is in the middle
  // of its read (after its first stat), which is when policy.csv is edited.
  const editDuringRead = async <T>(read: () => Promise<T>, line: string): Promise<T> => {
    await rm(join(dir, 'response.yaml'))
    execFileSync('mkfifo', [join(dir, 'response.yaml')])
    const reading = read()
    const writer = await open(join(dir, 'response.yaml'), 'w')
    await appendFile(join(dir, 'policy.csv'), line)
    await writer.write(response)
    await writer.close()
    const result = await reading
    await rm(join(dir, 'response.yaml'))
    await writeFile(join(dir, 'response.yaml'), response)
    return result
  }

  const error = await editDuringRead(() => readPolicySnapshot(dir).then(() => undefined, (err: unknown) => err), '\ng, erin, admin, acme\n')
  t.type(error, PolicyFilesChanging)
  t.match(error, { message: 'policy.csv: changed while it was being read; not loaded' })

  const result = await editDuringRead(() => source.reload(), '\ng, frank, admin, acme\n')
  t.same(result, { ok: false, error: 'policy.csv: changed while it was being read; not loaded' }, 'an explicit reload says so')
  t.equal(source.status().activeRevision, first, 'and the last good policy stays')
})

t.test('a policy directory given as a symbolic link follows the link when it is swapped', async (t) => {
  const { rename, symlink } = await import('node:fs/promises')
  const v1 = await policyCopy(t)
  const v2 = await policyCopy(t)
  await appendFile(join(v2, 'policy.csv'), '\ng, erin, admin, acme\n')
  const link = `${v1}.current`
  t.teardown(() => rm(link, { force: true }))
  await symlink(v1, link)
  const { source, clock } = await watchedSource(t, link)
  const first = source.status().activeRevision

  await symlink(v2, `${link}.tmp`)
  await rename(`${link}.tmp`, link)
  await source.check()
  t.ok(source.status().watch.pendingSince, 'the new target is seen')
  clock.advance(2000)
  await source.check()
  t.not(source.status().activeRevision, first)
  t.equal(source.status().activeRevision, (await loadPolicyBundle(v2)).version)

  await appendFile(join(v2, 'policy.csv'), '\ng, frank, admin, acme\n')
  await source.check()
  clock.advance(2000)
  await source.check()
  t.equal(source.status().activeRevision, (await loadPolicyBundle(v2)).version, 'and edits in the new target')
})
