import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import semver from 'semver'
import { ROOT } from '../helpers/build.js'

interface LockEntry {
  version?: string
  dev?: boolean
  engines?: { node?: string } | string[]
}

/**
 * package.json's engines field says which Node versions the PDP runs on; every package `npm install` puts beside it
 * for production (the lockfile's entries not marked dev) must say it runs on the oldest of them too. Otherwise an
 * install there warns EBADENGINE, or fails outright with engine-strict.
 */
t.test('every production dependency supports the oldest Node version package.json promises', async (t) => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
  const oldest = semver.minVersion(pkg.engines.node)
  t.ok(oldest, `engines.node "${pkg.engines.node}" has an oldest version`)
  t.ok(semver.satisfies(process.version, pkg.engines.node), `the Node running the tests (${process.version}) is one package.json promises`)
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  const refusing: string[] = []
  let checked = 0
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev) continue
    const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node
    if (range === undefined) continue
    checked++
    if (!semver.satisfies(oldest!, range)) refusing.push(`${path.replace(/^.*node_modules\//, '')}@${entry.version}: node ${range}`)
  }
  t.ok(checked > 20, `the lockfile names the engines of the production packages (${checked} checked)`)
  t.same(refusing, [], `every one accepts Node ${oldest}`)
})

/**
 * npm 11 skips a dependency's install scripts unless package.json's allowScripts says yes, and lists every package it
 * skipped without a recorded answer. Each package in the lockfile with an install script must have that answer, so a
 * fresh install asks the operator nothing and runs no script nobody reviewed.
 */
t.test('every package with an install script has a recorded answer in allowScripts', async (t) => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> }
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry & { hasInstallScript?: boolean }>
  }
  const answered = (name: string, version: string | undefined) =>
    Object.keys(pkg.allowScripts ?? {}).some((key) => key === name || key === `${name}@${version}`)
  const withScripts = Object.entries(lock.packages).filter(([path, entry]) => path !== '' && entry.hasInstallScript)
  t.ok(withScripts.length > 0, `the lockfile marks packages with install scripts (${withScripts.length})`)
  const unanswered = withScripts
    .map(([path, entry]) => ({ name: path.replace(/^.*node_modules\//, ''), version: entry.version }))
    .filter(({ name, version }) => !answered(name, version))
    .map(({ name, version }) => `${name}@${version}`)
  t.same(unanswered, [], 'allowScripts answers for each of them')
})
