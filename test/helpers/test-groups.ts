import { readdir } from 'node:fs/promises'
import { join, sep } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { ROOT } from './build.js'

/**
 * `npm test` runs one process per group (test/suites/<group>.ts), not one per test file: a process that loads the
 * app under tap's loaders costs some 3 CPU-seconds before its first test, which over 70 files was half the suite.
 * Each file still runs on its own with `npx tap test/<path>.test.ts`.
 *
 * A file belongs to the first group whose prefix its path (relative to test/) starts with; `''` is the files
 * directly in test/. test/suites.test.ts fails on a file no group takes.
 */
export const TEST_GROUPS: readonly { name: string; prefixes: readonly string[] }[] = [
  { name: 'explorer', prefixes: ['explorer/'] },
  { name: 'engine-policy', prefixes: ['engine/policy/'] },
  { name: 'engine', prefixes: ['engine/'] },
  { name: 'routes-decide', prefixes: ['routes/admin/', 'routes/authz', 'routes/decide-'] },
  { name: 'routes', prefixes: ['routes/'] },
  { name: 'identity', prefixes: ['identity/', 'audit/', 'config/'] },
  { name: 'response', prefixes: ['response/', 'security/', 'store/', 'scaling/'] },
  { name: 'edge', prefixes: ['http/', 'client/', 'cli/', 'gateways/', 'scheduling/'] },
  { name: 'deploy', prefixes: ['deploy/', 'bench/'] },
  { name: 'root', prefixes: [''] },
]

const TEST_DIR = join(ROOT, 'test')

/** Every test file, as a path relative to test/ with forward slashes, sorted. */
export async function testFiles(): Promise<string[]> {
  const all = await readdir(TEST_DIR, { recursive: true })
  return all
    .map((f) => f.split(sep).join('/'))
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
}

/** The group a test file runs in, or undefined when none takes it. */
export function groupOf(file: string): string | undefined {
  for (const group of TEST_GROUPS) {
    for (const prefix of group.prefixes) {
      if (prefix === '' ? !file.includes('/') : file.startsWith(prefix)) return group.name
    }
  }
  return undefined
}

/**
 * Imports the group's test files one after the other; each registers its tests on tap's root test.
 *
 * A root-level teardown makes tap end the root test as soon as it is idle, and a file's top-level set-up (an app
 * build, an npm ci) may still be running when the previous file's tests are done. So a placeholder test holds the
 * root busy until each file's top level has finished. A file must therefore not await its own tests at top level.
 */
export async function runGroup(name: string): Promise<void> {
  if (!TEST_GROUPS.some((g) => g.name === name)) throw new Error(`no test group named ${name}`)
  for (const file of await testFiles()) {
    if (groupOf(file) !== name) continue
    let loaded!: () => void
    const done = new Promise<void>((resolve) => (loaded = resolve))
    void t.test(`test/${file}`, async (t) => {
      await done
      t.pass('loaded')
    })
    try {
      await import(pathToFileURL(join(TEST_DIR, file)).href)
    } finally {
      loaded()
    }
  }
}
