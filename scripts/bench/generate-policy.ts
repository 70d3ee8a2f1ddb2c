/**
 * Generates a large policy in the shape of the bundled example (policies/): the same model, the example's
 * employee/manager/admin rows, plus generated roles that inherit them, per-role permissions on many
 * resource types with the example's kinds of conditions, a few deny rules, and subjects assigned to roles
 * per tenant. Deterministic for a given seed, so two runs benchmark the same policy.
 *
 *   npx tsx scripts/bench/generate-policy.ts <out dir> [lines] [subjects] [roles]
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT } from './paths.js'

export const EXAMPLE_POLICY_DIR = join(ROOT, 'policies')

/** The example's roles, which every generated role inherits from. */
export const BASE_ROLES = ['employee', 'manager', 'admin'] as const

export interface GeneratePolicyOptions {
  /** Policy lines (`p` and `g`) in policy.csv, the example's own included. */
  lines?: number
  /** Subjects assigned to roles by `g` lines. */
  subjects?: number
  /** Distinct roles, the example's three included. */
  roles?: number
  /** Roles per subject. */
  rolesPerSubject?: number
  tenants?: readonly string[]
  /** Distinct resource types the generated permissions spread over. */
  resourceTypes?: number
  seed?: number
}

export type Condition = 'none' | 'team' | 'owner' | 'unrestricted' | 'restricted'

export interface Permission {
  tenant: string
  resourceType: string
  action: string
  condition: Condition
  effect: 'allow' | 'deny'
}

export interface GeneratedSubject {
  id: string
  tenant: string
  team: string
  roles: string[]
}

export interface GeneratedPolicy {
  /** The policy.csv text. */
  csv: string
  counts: { lines: number; pLines: number; gLines: number; roles: number; subjects: number; resourceTypes: number }
  subjects: GeneratedSubject[]
  /** Each generated role's own permissions (the base roles' rows are the example's). */
  permissions: Map<string, Permission[]>
  resourceTypes: string[]
  actions: readonly string[]
}

const CONDITION_TEXT: Record<Condition, string> = {
  none: 'true',
  team: 'r.obj.attributes.team != null && r.obj.attributes.team == r.sub.attributes.team',
  owner: 'r.obj.attributes.owner == r.sub.id',
  unrestricted: 'r.obj.attributes.classification != "restricted"',
  restricted: 'r.obj.attributes.classification == "restricted"',
}

const ALLOW_CONDITIONS: readonly Condition[] = ['none', 'team', 'owner', 'unrestricted']
const ACTIONS = ['read', 'create', 'update', 'delete', 'approve', 'export'] as const
const NOUNS = ['invoices', 'orders', 'tickets', 'reports', 'contracts'] as const
const TEAMS = 40

/** The example's permission rows and role hierarchy (policies/policy.csv without its four sample users). */
const EXAMPLE_ROWS = [
  'p, employee, *, documents, read, r.obj.attributes.owner == r.sub.id, allow',
  'p, employee, *, documents, update, r.obj.attributes.owner == r.sub.id, allow',
  'p, employee, *, documents, delete, r.obj.attributes.owner == r.sub.id, allow',
  'p, employee, *, documents, create, true, allow',
  'p, manager, *, documents, read, r.obj.attributes.team != null && r.obj.attributes.team == r.sub.attributes.team, allow',
  'p, manager, *, users, read, true, allow',
  'p, admin, *, documents, read, true, allow',
  'p, admin, *, documents, update, true, allow',
  'p, admin, *, documents, delete, true, allow',
  'p, admin, *, users, create, true, allow',
  'p, admin, *, users, update, true, allow',
  'p, admin, *, users, delete, true, allow',
  'p, admin, *, system.logs, read, true, allow',
  'p, admin, *, system.config, update, true, allow',
  'g, manager, employee, *',
  'g, admin, manager, *',
]

/** A small deterministic PRNG (mulberry32), so the generated policy depends only on the options. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pad = (n: number, width: number) => String(n).padStart(width, '0')

export function teamName(index: number): string {
  return `team-${pad(index % TEAMS, 2)}`
}

export function generatePolicy(options: GeneratePolicyOptions = {}): GeneratedPolicy {
  const lineTarget = options.lines ?? 50_000
  const subjectCount = options.subjects ?? 5_000
  const roleCount = options.roles ?? 500
  const perSubject = options.rolesPerSubject ?? 2
  const tenants = options.tenants ?? ['acme', 'globex', 'initech', 'umbrella', 'hooli']
  const typeCount = options.resourceTypes ?? 250
  const random = seededRandom(options.seed ?? 1)
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!

  const generatedRoles = roleCount - BASE_ROLES.length
  if (generatedRoles < 1) throw new RangeError(`roles must be more than ${BASE_ROLES.length} (the example's own)`)
  if (perSubject > generatedRoles) throw new RangeError('rolesPerSubject exceeds the generated roles')

  const resourceTypes = Array.from({ length: typeCount }, (_, i) => `app${pad(Math.floor(i / NOUNS.length), 3)}.${NOUNS[i % NOUNS.length]}`)
  const roleNames = Array.from({ length: generatedRoles }, (_, i) => `role-${pad(i, 4)}`)

  const out: string[] = ['# Generated by scripts/bench/generate-policy.ts in the shape of the bundled example.', '', ...EXAMPLE_ROWS, '']
  let pLines = EXAMPLE_ROWS.filter((row) => row.startsWith('p,')).length
  let gLines = EXAMPLE_ROWS.length - pLines

  // Role hierarchy: each generated role inherits a base role (mostly employee); some also inherit an
  // earlier generated role, so effective-role lookups walk more than one level. Earlier only: no cycles.
  for (let i = 0; i < generatedRoles; i++) {
    const draw = random()
    const base = draw < 0.8 ? 'employee' : draw < 0.95 ? 'manager' : 'admin'
    out.push(`g, ${roleNames[i]}, ${base}, *`)
    gLines++
    if (i >= 10 && i % 10 === 0) {
      out.push(`g, ${roleNames[i]}, ${roleNames[Math.floor(random() * i)]}, *`)
      gLines++
    }
  }

  const subjects: GeneratedSubject[] = []
  for (let i = 0; i < subjectCount; i++) {
    const tenant = tenants[i % tenants.length]!
    const roles = new Set<string>()
    while (roles.size < perSubject) roles.add(pick(roleNames))
    const subject: GeneratedSubject = { id: `user-${pad(i, 5)}`, tenant, team: teamName(Math.floor(random() * TEAMS)), roles: [...roles] }
    subjects.push(subject)
    for (const role of subject.roles) out.push(`g, ${subject.id}, ${role}, ${tenant}`)
    gLines += subject.roles.length
  }

  const permissionLines = lineTarget - pLines - gLines
  if (permissionLines < generatedRoles) throw new RangeError(`lines (${lineTarget}) leaves fewer permission lines than roles; raise lines or lower subjects`)
  const perRole = Math.floor(permissionLines / generatedRoles)
  const extra = permissionLines % generatedRoles
  if (perRole + 1 > typeCount * ACTIONS.length) throw new RangeError('too many permissions per role for the resource types')

  const permissions = new Map<string, Permission[]>()
  for (let i = 0; i < generatedRoles; i++) {
    const role = roleNames[i]!
    const own: Permission[] = []
    const count = perRole + (i < extra ? 1 : 0)
    // Consecutive k walk the types from a per-role offset; past the last type the action shifts, so no
    // (type, action) pair repeats within a role. Every 20th line denies restricted resources on the
    // permission just before it, as operators carve exceptions out of a grant.
    const offset = Math.floor(random() * typeCount)
    for (let k = 0; k < count; k++) {
      const previous = own[own.length - 1]
      const permission: Permission =
        k % 20 === 19 && previous
          ? { ...previous, condition: 'restricted', effect: 'deny' }
          : {
              tenant: random() < 0.2 ? pick(tenants) : '*',
              resourceType: resourceTypes[(offset + k) % typeCount]!,
              action: ACTIONS[(i + k + Math.floor(k / typeCount)) % ACTIONS.length]!,
              condition: ALLOW_CONDITIONS[k % ALLOW_CONDITIONS.length]!,
              effect: 'allow',
            }
      own.push(permission)
      out.push(`p, ${role}, ${permission.tenant}, ${permission.resourceType}, ${permission.action}, ${CONDITION_TEXT[permission.condition]}, ${permission.effect}`)
    }
    pLines += count
    permissions.set(role, own)
  }

  return {
    csv: `${out.join('\n')}\n`,
    counts: { lines: pLines + gLines, pLines, gLines, roles: roleCount, subjects: subjectCount, resourceTypes: typeCount },
    subjects,
    permissions,
    resourceTypes,
    actions: ACTIONS,
  }
}

/** Writes a policy directory: the generated policy.csv beside copies of the example's other files (its tests are left out). */
export async function writePolicyDir(dir: string, policy: GeneratedPolicy, exampleDir = EXAMPLE_POLICY_DIR): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (const name of ['model.conf', 'risk.yaml', 'identity.yaml', 'response.yaml', 'routes.yaml']) {
    await copyFile(join(exampleDir, name), join(dir, name))
  }
  await writeFile(join(dir, 'policy.csv'), policy.csv)
}

/** Reads a count argument; a clear message rather than NaN lines. */
function countArg(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer, got "${value}"`)
  return n
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const [dir, lines, subjects, roles] = process.argv.slice(2)
  if (dir === undefined) {
    process.stderr.write('usage: generate-policy.ts <out dir> [lines] [subjects] [roles]\n')
    process.exit(2)
  }
  const options: GeneratePolicyOptions = {}
  const l = countArg(lines, 'lines')
  const s = countArg(subjects, 'subjects')
  const r = countArg(roles, 'roles')
  if (l !== undefined) options.lines = l
  if (s !== undefined) options.subjects = s
  if (r !== undefined) options.roles = r
  const policy = generatePolicy(options)
  await writePolicyDir(dir, policy)
  process.stdout.write(`${dir}: ${policy.counts.lines} policy lines (${policy.counts.pLines} p, ${policy.counts.gLines} g), ${policy.counts.roles} roles, ${policy.counts.subjects} subjects\n`)
}
