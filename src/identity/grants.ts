import { randomUUID } from 'node:crypto'
import type { Gate, StateStore } from '../engine/ports.js'
import { matchesPermission, type IdentityPolicy } from '../engine/policy/files/identity.js'
import { identityKeys } from './keys.js'

/** A just-in-time grant: a role or one permission, for a while, optionally within a tenant and a resource. */
export interface Grant {
  id: string
  subject: string
  role?: string
  permission?: { resourceType: string; action: string }
  tenant?: string
  resource?: { type: string; id?: string }
  durationSeconds: number
  justification: string
  grantedBy: string
  approvedBy?: string
  status: 'active' | 'pending'
  /** Epoch ms. */
  createdAt: number
  /** Epoch ms; set once the grant is active. */
  expiresAt?: number
}

export type GrantInput = Pick<Grant, 'subject' | 'durationSeconds' | 'justification' | 'grantedBy'> &
  Partial<Pick<Grant, 'role' | 'permission' | 'tenant' | 'resource'>>

/** Why a grant operation was refused; the route maps each kind to its catalogue entry. */
export type GrantErrorKind = 'validation' | 'not_found' | 'conflict' | 'self_grant' | 'four_eyes'

export class GrantError extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly kind: GrantErrorKind = 'validation',
  ) {
    super(message)
    this.name = 'GrantError'
  }
}

function parseGrant(raw: string): Grant | undefined {
  try {
    const grant = JSON.parse(raw) as Grant
    return typeof grant.id === 'string' && typeof grant.subject === 'string' ? grant : undefined
  } catch {
    return undefined
  }
}

function inScope(grant: Grant, tenant: string, resourceType: string, resourceId: string | undefined): boolean {
  if (grant.tenant !== undefined && grant.tenant !== tenant) return false
  if (grant.resource && (grant.resource.type !== resourceType || (grant.resource.id !== undefined && grant.resource.id !== resourceId))) return false
  return true
}

/** Grants take effect on the next decision and end at their expiry: checked when deciding, cleaned lazily. */
export const grantGate: Gate = {
  name: 'grants',
  prepare({ facts, bundle }, batch) {
    const key = identityKeys.grants(facts.subjectId)
    const all = batch.hGetAll(key)
    return (item) => {
      const outcome: ReturnType<ReturnType<Gate['prepare']>> = {}
      const roles: string[] = []
      let permissionGranted = false
      const stale: string[] = []
      const pendingTtl = bundle.identity.grants.pendingTtlSeconds * 1000
      for (const [id, raw] of Object.entries(all.value)) {
        const grant = parseGrant(raw)
        if (!grant) {
          stale.push(id)
          continue
        }
        if (grant.status === 'pending') {
          if (facts.now - grant.createdAt > pendingTtl) stale.push(id)
          continue
        }
        if (grant.expiresAt === undefined || grant.expiresAt <= facts.now) {
          stale.push(id)
          continue
        }
        if (item.resourceId === undefined && grant.resource?.id !== undefined && inScope(grant, facts.tenant, item.resourceType, grant.resource.id)) {
          outcome.scopedToResources ??= `the just-in-time grant ${grant.id} applies to the single resource ${grant.resource.type}/${grant.resource.id}`
        }
        if (!inScope(grant, facts.tenant, item.resourceType, item.resourceId)) continue
        if (grant.role) roles.push(grant.role)
        if (grant.permission && grant.permission.resourceType === item.resourceType && grant.permission.action === item.action) {
          permissionGranted = true
        }
      }
      if (roles.length > 0) outcome.roles = roles
      if (permissionGranted) outcome.permissionGranted = true
      if (stale.length > 0) outcome.followUp = (later) => stale.forEach((id) => later.hDel(key, id))
      return outcome
    }
  },
}

export async function listGrants(store: StateStore, subject: string, now: number): Promise<Grant[]> {
  const batch = store.batch()
  const all = batch.hGetAll(identityKeys.grants(subject))
  await batch.exec()
  return Object.values(all.value)
    .map(parseGrant)
    .filter((g): g is Grant => g !== undefined && (g.status === 'pending' || (g.expiresAt ?? 0) > now))
    .sort((a, b) => a.createdAt - b.createdAt)
}

/**
 * Whether a grant waits for a second admin: its role is in `sensitiveRoles` (the bundle's
 * sensitiveGrantRoles: sensitive roles and the roles that confer them or a sensitive permission), or its
 * permission matches identity.yaml's sensitivePermissions.
 */
export function isSensitive(input: Pick<Grant, 'role' | 'permission'>, policy: IdentityPolicy, sensitiveRoles: ReadonlySet<string>): boolean {
  if (input.role !== undefined && sensitiveRoles.has(input.role)) return true
  return input.permission !== undefined && matchesPermission(policy.grants.sensitivePermissions, input.permission)
}

/**
 * Creates a grant: active at once, or pending when it is sensitive. `grantedBy` is the authenticated
 * caller, who may not grant anything to their own subject.
 */
export async function createGrant(
  store: StateStore,
  input: GrantInput,
  policy: IdentityPolicy,
  roles: { known: ReadonlySet<string>; sensitive: ReadonlySet<string> },
  now: number,
): Promise<Grant> {
  if ((input.role === undefined) === (input.permission === undefined)) throw new GrantError('/role', 'a grant is either a role or a permission')
  if (input.role !== undefined && !roles.known.has(input.role)) throw new GrantError('/role', `role "${input.role}" is not in the policy`)
  if (input.durationSeconds > policy.grants.maxDurationSeconds) {
    throw new GrantError('/durationSeconds', `durationSeconds must be at most ${policy.grants.maxDurationSeconds}`)
  }
  if (input.subject === input.grantedBy) throw new GrantError('/subject', 'an admin cannot grant anything to their own subject', 'self_grant')
  const sensitive = isSensitive(input, policy, roles.sensitive)
  const grant: Grant = { ...input, id: randomUUID(), status: sensitive ? 'pending' : 'active', createdAt: now }
  if (!sensitive) grant.expiresAt = now + input.durationSeconds * 1000
  const batch = store.batch()
  batch.hSet(identityKeys.grants(input.subject), { [grant.id]: JSON.stringify(grant) }, ttlFor(grant, policy, now))
  await batch.exec()
  return grant
}

function ttlFor(grant: Grant, policy: IdentityPolicy, now: number): number {
  const until = grant.expiresAt ?? now + policy.grants.pendingTtlSeconds * 1000
  // The hash lives as long as its longest grant might; expired entries are dropped when seen.
  return Math.max(until - now, policy.grants.maxDurationSeconds * 1000, policy.grants.pendingTtlSeconds * 1000) + 60_000
}

async function readGrant(store: StateStore, subject: string, id: string): Promise<Grant> {
  const batch = store.batch()
  const all = batch.hGetAll(identityKeys.grants(subject))
  await batch.exec()
  const raw = all.value[id]
  const grant = raw === undefined ? undefined : parseGrant(raw)
  if (!grant) throw new GrantError('/id', `no grant ${id} for subject ${subject}`, 'not_found')
  return grant
}

/**
 * A second admin approves a pending grant; its time starts now. `approvedBy` is the authenticated
 * caller: neither the grant's creator nor its subject.
 */
export async function approveGrant(store: StateStore, subject: string, id: string, approvedBy: string, policy: IdentityPolicy, now: number): Promise<Grant> {
  const grant = await readGrant(store, subject, id)
  if (grant.status !== 'pending') throw new GrantError('/id', 'the grant is not pending', 'conflict')
  if (now - grant.createdAt > policy.grants.pendingTtlSeconds * 1000) throw new GrantError('/id', 'the grant waited too long for approval', 'conflict')
  if (approvedBy === grant.subject) throw new GrantError('/id', 'an admin cannot approve a grant for their own subject', 'self_grant')
  if (approvedBy === grant.grantedBy) throw new GrantError('/id', 'a grant must be approved by a different admin than the one who granted it', 'four_eyes')
  const active: Grant = { ...grant, status: 'active', approvedBy, expiresAt: now + grant.durationSeconds * 1000 }
  const batch = store.batch()
  batch.hSet(identityKeys.grants(subject), { [id]: JSON.stringify(active) }, ttlFor(active, policy, now))
  await batch.exec()
  return active
}

export async function revokeGrant(store: StateStore, subject: string, id: string): Promise<Grant> {
  const grant = await readGrant(store, subject, id)
  const batch = store.batch()
  batch.hDel(identityKeys.grants(subject), id)
  await batch.exec()
  return grant
}
