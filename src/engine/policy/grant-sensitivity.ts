import type { ModelFile, PolicyLine } from './policy-files.js'
import type { IdentityPolicy } from './files/identity.js'

/**
 * The roles a grant of which needs approval: the sensitive roles themselves, any role that reaches one
 * through the hierarchy, and any role that holds (itself or through what it reaches) an allow on a
 * permission matching `sensitivePermissions`. Without this, granting a role that inherits `admin`, or a
 * role someone later gave `users delete`, would slip past the four eyes the lists ask for.
 *
 * Tenants are ignored on purpose: a link or a permission in any tenant counts, which can only make more
 * grants sensitive, never fewer. Computed once per policy load.
 */
export function sensitiveGrantRoles(model: ModelFile, lines: readonly PolicyLine[], policy: IdentityPolicy): ReadonlySet<string> {
  const inherits = new Map<string, string[]>()
  for (const line of lines) {
    if (!model.roleArity.has(line.ptype)) continue
    const [from, to] = line.values as [string, string]
    const list = inherits.get(from)
    if (list) list.push(to)
    else inherits.set(from, [to])
  }

  const holdsSensitive = new Set<string>(policy.grants.sensitiveRoles)
  for (const [ptype, tokens] of model.policyTokens) {
    const sub = tokens.indexOf('sub')
    const obj = tokens.indexOf('obj')
    const act = tokens.indexOf('act')
    const eft = tokens.indexOf('eft')
    if (sub < 0 || obj < 0 || act < 0) continue
    for (const line of lines) {
      if (line.ptype !== ptype || (eft >= 0 && line.values[eft] === 'deny')) continue
      const resourceType = line.values[obj]!
      const action = line.values[act]!
      // A line whose action is "*" confers every action, so it matches a pattern for any one of them.
      const hit = policy.grants.sensitivePermissions.some(
        (p) => (p.resourceType === '*' || p.resourceType === resourceType) && (p.action === '*' || action === '*' || p.action === action),
      )
      if (hit) holdsSensitive.add(line.values[sub]!)
    }
  }

  const sensitive = new Set<string>()
  const names = new Set<string>([...inherits.keys(), ...[...inherits.values()].flat(), ...holdsSensitive])
  for (const name of names) {
    const seen = new Set<string>([name])
    const queue = [name]
    while (queue.length > 0) {
      const role = queue.pop()!
      if (holdsSensitive.has(role)) {
        sensitive.add(name)
        break
      }
      for (const next of inherits.get(role) ?? []) {
        if (!seen.has(next)) {
          seen.add(next)
          queue.push(next)
        }
      }
    }
  }
  return sensitive
}
