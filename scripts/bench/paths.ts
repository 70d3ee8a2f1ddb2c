import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** The repository root: the nearest folder with a package.json, whether this runs from scripts/bench or compiled under dist/. */
function findRoot(from: string): string {
  let dir = from
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error(`no package.json above ${from}`)
    dir = up
  }
  return dir
}

export const ROOT = findRoot(import.meta.dirname)
