import { Type } from 'typebox'
import { STEP_UP_LEVELS, type StepUpLevel } from '../../types.js'
import { readYamlDocument } from '../yaml-reader.js'

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

const d = DEFAULT_IDENTITY_POLICY
const name = (what: string) => Type.String({ pattern: '\\S', patternErrorMessage: `must be ${what}` })

/** identity.yaml as written: every key optional, a missing one takes its default. */
export const IdentityFileSchema = Type.Object(
  {
    sessions: Type.Optional(
      Type.Object(
        {
          idleBaseMinutes: Type.Optional(Type.Number({ minimum: 1, maximum: 7 * 24 * 60, default: d.sessions.idleBaseMinutes })),
          idleMinimumMinutes: Type.Optional(Type.Number({ minimum: 0, maximum: 7 * 24 * 60, default: d.sessions.idleMinimumMinutes })),
          absoluteHours: Type.Optional(Type.Number({ minimum: 0.1, maximum: 24 * 365, default: d.sessions.absoluteHours })),
          onIdle: Type.Optional(Type.Enum(['step_up', 'deny'], { default: d.sessions.onIdle })),
          idleStepUpLevel: Type.Optional(Type.Enum(STEP_UP_LEVELS, { default: d.sessions.idleStepUpLevel })),
        },
        { additionalProperties: false },
      ),
    ),
    grants: Type.Optional(
      Type.Object(
        {
          maxDurationSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 365 * 86_400, default: d.grants.maxDurationSeconds })),
          sensitiveRoles: Type.Optional(Type.Array(name('a role name'), { default: d.grants.sensitiveRoles })),
          sensitivePermissions: Type.Optional(
            Type.Array(
              Type.Object(
                { resourceType: name('a resource type, or "*" for any'), action: name('an action, or "*" for any') },
                { additionalProperties: false },
              ),
              { default: d.grants.sensitivePermissions },
            ),
          ),
          pendingTtlSeconds: Type.Optional(Type.Number({ minimum: 60, maximum: 30 * 86_400, default: d.grants.pendingTtlSeconds })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, title: 'identity.yaml', description: 'Sessions and just-in-time grants of the zt-pdp policy directory.' },
)

/** Parses identity.yaml over the defaults; problems are PolicyFileErrors naming file and line. */
export function parseIdentityPolicy(text: string, file = 'identity.yaml'): IdentityPolicy {
  const doc = readYamlDocument(IdentityFileSchema, text, file)
  const sessions = { ...d.sessions, ...doc.value.sessions }
  const grants = { ...d.grants, ...doc.value.grants }
  if (sessions.idleMinimumMinutes > sessions.idleBaseMinutes) doc.fail(['sessions', 'idleMinimumMinutes'], 'must not exceed idleBaseMinutes')
  return {
    sessions,
    grants: { ...grants, sensitivePermissions: grants.sensitivePermissions.map(({ resourceType, action }) => ({ resourceType, action })) },
  }
}
