import t from 'tap'
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { distIsCurrentIn } from '../helpers/dist.js'

/** A project folder whose files carry the modification times given (seconds), so that no test waits for a clock. */
async function project(t: { teardown(fn: () => unknown): void }, files: Record<string, number>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'pdp-dist-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  for (const [path, seconds] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true })
    await writeFile(join(root, path), '')
    await utimes(join(root, path), seconds, seconds)
  }
  return root
}

const BUILT = {
  'package.json': 100,
  'tsconfig.json': 100,
  'src/app.ts': 100,
  'src/store/driver.ts': 100,
  'src/store/untyped-module.d.ts': 100,
  'src/ui-page/main.ts': 100,
  'dist/src/app.js': 200,
  'dist/src/store/driver.js': 200,
}

const cases: { name: string; change: Record<string, number>; drop?: string; current: boolean }[] = [
  { name: 'every source built after the last change: current (a declaration file has no .js of its own)', change: {}, current: true },
  { name: 'a source changed after the build', change: { 'src/store/driver.ts': 300 }, current: false },
  { name: 'a declaration file changed after the build', change: { 'src/store/untyped-module.d.ts': 300 }, current: false },
  { name: 'package.json changed after the build', change: { 'package.json': 300 }, current: false },
  { name: 'a new source without its .js', change: { 'src/new.ts': 150 }, current: false },
  { name: 'a source whose .js is missing', change: {}, drop: 'dist/src/app.js', current: false },
  { name: 'the explorer page is built elsewhere (dist/ui) and does not count', change: { 'src/ui-page/main.ts': 300 }, current: true },
]

for (const c of cases) {
  t.test(c.name, async (t) => {
    const files: Record<string, number> = { ...BUILT, ...c.change }
    if (c.drop) delete files[c.drop]
    t.equal(await distIsCurrentIn(await project(t, files)), c.current)
  })
}
