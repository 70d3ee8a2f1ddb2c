import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { PolicyFileError } from './policy-files.js'

export const MODEL_FILE = 'model.conf'
export const POLICY_FILE = 'policy.csv'
export const ROUTES_FILE = 'routes.yaml'
export const RISK_FILE = 'risk.yaml'
export const IDENTITY_FILE = 'identity.yaml'
export const RESPONSE_FILE = 'response.yaml'
export const REQUEST_FILE = 'request.yaml'

const REQUIRED = [MODEL_FILE, POLICY_FILE]
/**
 * The only names a load reads. Anything else in the directory (editor swap and backup files, the
 * temporary file of an atomic rename, a ConfigMap's `..data` link) never takes part in a load.
 */
export const POLICY_FILE_NAMES: readonly string[] = [...REQUIRED, REQUEST_FILE, ROUTES_FILE, RISK_FILE, IDENTITY_FILE, RESPONSE_FILE]

/** The policy files of a directory as read at one moment, with what identifies that moment. */
export interface PolicySnapshot {
  dir: string
  /** Name → content of each policy file present. */
  files: ReadonlyMap<string, string>
  /** Hash of the files' names and contents: the bundle's version. */
  version: string
  /** Device, inode, size, modification and change time of every policy file (what `stampPolicyFiles` returns). */
  stamp: string
}

/** A policy file was written, replaced or removed while the directory was being read: what was read is not one version. */
export class PolicyFilesChanging extends PolicyFileError {
  constructor(file: string) {
    super(file, undefined, 'changed while it was being read; not loaded')
    this.name = 'PolicyFilesChanging'
  }
}

export function hashFiles(files: ReadonlyMap<string, string>): string {
  const hash = createHash('sha256')
  for (const name of [...files.keys()].sort()) {
    hash.update(name).update('\u0000').update(files.get(name)!).update('\u0000')
  }
  return hash.digest('hex').slice(0, 16)
}

/** stat follows symbolic links, so a ConfigMap's `..data` swap changes the inode seen behind every file. */
async function stampOf(path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true })
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
  } catch (err) {
    return `!${(err as NodeJS.ErrnoException).code ?? 'error'}`
  }
}

async function stamps(dir: string): Promise<string[]> {
  return Promise.all(POLICY_FILE_NAMES.map((name) => stampOf(join(dir, name))))
}

const joinStamps = (list: string[]) => POLICY_FILE_NAMES.map((name, i) => `${name}=${list[i]}`).join(';')

/** Cheap check for "did anything change": stats every policy file, reads none. */
export async function stampPolicyFiles(dir: string): Promise<string> {
  return joinStamps(await stamps(dir))
}

type ReadOutcome = { text: string } | { code: string }

/**
 * Reads every policy file, statting all of them before and after: if any was written, replaced,
 * created or removed meanwhile, it throws PolicyFilesChanging instead of returning a mixture.
 */
export async function readPolicySnapshot(dir: string): Promise<PolicySnapshot> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a directory')
  } catch {
    throw new PolicyFileError(dir, undefined, 'policy directory cannot be read')
  }
  const before = await stamps(dir)
  const outcomes = await Promise.all(
    POLICY_FILE_NAMES.map(async (name): Promise<ReadOutcome> => {
      try {
        return { text: await readFile(join(dir, name), 'utf8') }
      } catch (err) {
        return { code: (err as NodeJS.ErrnoException).code ?? 'error' }
      }
    }),
  )
  const after = await stamps(dir)
  const changed = POLICY_FILE_NAMES.find((_, i) => before[i] !== after[i])
  if (changed !== undefined) throw new PolicyFilesChanging(changed)

  const files = new Map<string, string>()
  POLICY_FILE_NAMES.forEach((name, i) => {
    const outcome = outcomes[i]!
    if ('text' in outcome) files.set(name, outcome.text)
    else if (outcome.code === 'ENOENT' && REQUIRED.includes(name)) throw new PolicyFileError(name, undefined, `missing from ${dir}`)
    else if (outcome.code !== 'ENOENT') throw new PolicyFileError(name, undefined, `cannot be read (${outcome.code})`)
  })
  return { dir, files, version: hashFiles(files), stamp: joinStamps(after) }
}
