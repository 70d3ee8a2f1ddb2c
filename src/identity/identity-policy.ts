import { STEP_UP_LEVELS, type StepUpLevel } from '../engine/types.js'
import { parseYamlFile, type YamlPath } from '../engine/policy/yaml-file.js'

export interface IdentityPolicy {
  sessions: {
    /** Idle time-out at full trust, minutes; it shrinks with device trust (× trust/100). */
    idleBaseMinutes: number
    /** The idle time-out never goes below this, minutes. */
    idleMinimumMinutes: number
    /** A session older than this is over, whatever its activity, hours. */
    absoluteHours: number
    /** What an idle-expired session gets: a step-up at `idleStepUpLevel`, or a deny. */
    onIdle: 'step_up' | 'deny'
    idleStepUpLevel: StepUpLevel
  }
  grants: {
    maxDurationSeconds: number
    /** Roles a grant of which needs a second, different admin's approval. */
    sensitiveRoles: string[]
    /** Permissions a grant of which needs the same approval; `*` in a field matches any value. */
    sensitivePermissions: PermissionPattern[]
    /** A pending grant not approved within this many seconds is dropped. */
    pendingTtlSeconds: number
  }
}

export interface PermissionPattern {
  resourceType: string
  action: string
}

/** Whether a granted permission falls under one of the patterns. */
export function matchesPermission(patterns: readonly PermissionPattern[], permission: PermissionPattern): boolean {
  const fits = (pattern: string, value: string) => pattern === '*' || pattern === value
  return patterns.some((p) => fits(p.resourceType, permission.resourceType) && fits(p.action, permission.action))
}

export const DEFAULT_IDENTITY_POLICY: IdentityPolicy = {
  sessions: { idleBaseMinutes: 30, idleMinimumMinutes: 5, absoluteHours: 8, onIdle: 'step_up', idleStepUpLevel: 'medium' },
  grants: { maxDurationSeconds: 8 * 3600, sensitiveRoles: [], sensitivePermissions: [], pendingTtlSeconds: 86_400 },
}

/** Parses identity.yaml over the defaults; problems are PolicyFileErrors naming file and line. */
export function parseIdentityPolicy(text: string, file = 'identity.yaml'): IdentityPolicy {
  const yaml = parseYamlFile(text, file)
  const d = DEFAULT_IDENTITY_POLICY
  const map = (path: YamlPath, value: unknown, keys: string[]): Record<string, unknown> => {
    if (value === undefined || value === null) return {}
    if (typeof value !== 'object' || Array.isArray(value)) yaml.fail(path, 'must be a mapping')
    for (const key of Object.keys(value as object)) if (!keys.includes(key)) yaml.fail([...path, key], `unknown key "${key}" (expected one of ${keys.join(', ')})`)
    return value as Record<string, unknown>
  }
  const num = (path: string[], value: unknown, fallback: number, min: number, max: number): number => {
    if (value === undefined || value === null) return fallback
    if (typeof value !== 'number' || !Number.isFinite(value)) yaml.fail(path, 'must be a number')
    if ((value as number) < min || (value as number) > max) yaml.fail(path, `must be between ${min} and ${max}`)
    return value as number
  }
  const root = map([], yaml.value, ['sessions', 'grants'])
  const s = map(['sessions'], root.sessions, ['idleBaseMinutes', 'idleMinimumMinutes', 'absoluteHours', 'onIdle', 'idleStepUpLevel'])
  const g = map(['grants'], root.grants, ['maxDurationSeconds', 'sensitiveRoles', 'sensitivePermissions', 'pendingTtlSeconds'])
  const onIdle = s.onIdle ?? d.sessions.onIdle
  if (onIdle !== 'step_up' && onIdle !== 'deny') yaml.fail(['sessions', 'onIdle'], 'must be step_up or deny')
  const level = s.idleStepUpLevel ?? d.sessions.idleStepUpLevel
  if (!(STEP_UP_LEVELS as readonly unknown[]).includes(level)) yaml.fail(['sessions', 'idleStepUpLevel'], `must be one of ${STEP_UP_LEVELS.join(', ')}`)
  let sensitiveRoles = d.grants.sensitiveRoles
  if (g.sensitiveRoles !== undefined) {
    if (!Array.isArray(g.sensitiveRoles) || g.sensitiveRoles.some((r) => typeof r !== 'string' || r === '')) {
      yaml.fail(['grants', 'sensitiveRoles'], 'must be a list of role names')
    }
    sensitiveRoles = g.sensitiveRoles as string[]
  }
  let sensitivePermissions = d.grants.sensitivePermissions
  if (g.sensitivePermissions !== undefined && g.sensitivePermissions !== null) {
    if (!Array.isArray(g.sensitivePermissions)) yaml.fail(['grants', 'sensitivePermissions'], 'must be a list of {resourceType, action}')
    sensitivePermissions = (g.sensitivePermissions as unknown[]).map((entry, i) => {
      const path = ['grants', 'sensitivePermissions', i]
      if (entry === null || entry === undefined) yaml.fail(path, 'must be a mapping with resourceType and action')
      const e = map(path, entry, ['resourceType', 'action'])
      const field = (key: 'resourceType' | 'action'): string => {
        const value = e[key]
        if (typeof value !== 'string' || value.trim() === '') yaml.fail([...path, key], `${key} is required: a name, or "*" for any`)
        return value as string
      }
      return { resourceType: field('resourceType'), action: field('action') }
    })
  }
  const idleBaseMinutes = num(['sessions', 'idleBaseMinutes'], s.idleBaseMinutes, d.sessions.idleBaseMinutes, 1, 7 * 24 * 60)
  const idleMinimumMinutes = num(['sessions', 'idleMinimumMinutes'], s.idleMinimumMinutes, d.sessions.idleMinimumMinutes, 0, 7 * 24 * 60)
  if (idleMinimumMinutes > idleBaseMinutes) yaml.fail(['sessions', 'idleMinimumMinutes'], 'must not exceed idleBaseMinutes')
  return {
    sessions: {
      idleBaseMinutes,
      idleMinimumMinutes,
      absoluteHours: num(['sessions', 'absoluteHours'], s.absoluteHours, d.sessions.absoluteHours, 0.1, 24 * 365),
      onIdle: onIdle as IdentityPolicy['sessions']['onIdle'],
      idleStepUpLevel: level as StepUpLevel,
    },
    grants: {
      maxDurationSeconds: num(['grants', 'maxDurationSeconds'], g.maxDurationSeconds, d.grants.maxDurationSeconds, 1, 365 * 86_400),
      sensitiveRoles,
      sensitivePermissions,
      pendingTtlSeconds: num(['grants', 'pendingTtlSeconds'], g.pendingTtlSeconds, d.grants.pendingTtlSeconds, 60, 30 * 86_400),
    },
  }
}
