import { ANY_DOMAIN, type PolicyLine } from './policy-files.js'

/**
 * The role hierarchy of one role type (`g`), as Casbin's default role manager with a wildcard
 * domain matcher understands it: a link `g, a, b, d` means a has b in domain d; d = `*` means every domain.
 */
export class RoleGraph {
  private readonly links = new Map<string, Map<string, string[]>>()
  readonly names = new Set<string>()
  /** Names with a link of their own, in any domain. */
  private readonly members = new Set<string>()

  constructor(lines: readonly PolicyLine[], ptype = 'g') {
    for (const line of lines) {
      if (line.ptype !== ptype) continue
      const [from, to, domain = ANY_DOMAIN] = line.values as [string, string, string?]
      let byName = this.links.get(domain)
      if (!byName) this.links.set(domain, (byName = new Map()))
      const list = byName.get(from)
      if (list) list.push(to)
      else byName.set(from, [to])
      this.names.add(to)
      this.members.add(from)
    }
  }

  /** Whether the name has a link of its own; one without reaches nothing but itself. */
  hasLinks(name: string): boolean {
    return this.members.has(name)
  }

  private direct(name: string, domain: string): string[] {
    const own = domain === ANY_DOMAIN ? undefined : this.links.get(domain)?.get(name)
    const shared = this.links.get(ANY_DOMAIN)?.get(name)
    if (!own) return shared ?? []
    if (!shared) return own
    return [...own, ...shared]
  }

  /**
   * The names themselves plus every role reachable from them in at most `maxDepth` links, which is what
   * Casbin's role manager answers for `g(name, role, domain)` (it stops following links at its hierarchy cap).
   */
  holders(names: readonly string[], domain: string, maxDepth: number): Set<string> {
    const seen = new Set<string>(names)
    let frontier = [...seen]
    for (let depth = 0; depth < maxDepth && frontier.length > 0; depth++) {
      const next: string[] = []
      for (const name of frontier) {
        for (const role of this.direct(name, domain)) {
          if (!seen.has(role)) {
            seen.add(role)
            next.push(role)
          }
        }
      }
      frontier = next
    }
    return seen
  }

  /** Every role reachable from the given names in the domain, the names themselves excluded unless reachable. */
  closure(names: readonly string[], domain: string): string[] {
    const seen = new Set<string>()
    const queue = [...names]
    while (queue.length > 0) {
      const name = queue.pop()!
      for (const role of this.direct(name, domain)) {
        if (!seen.has(role)) {
          seen.add(role)
          queue.push(role)
        }
      }
    }
    return [...seen]
  }
}
