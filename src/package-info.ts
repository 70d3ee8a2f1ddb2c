import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** The package root: found by walking up, since the code runs both from src/ (tests) and dist/src/ (npm start). */
export const PACKAGE_ROOT = (() => {
  let dir = import.meta.dirname
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('package.json not found above ' + import.meta.dirname)
    dir = parent
  }
  return dir
})()

export const PACKAGE_VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version
