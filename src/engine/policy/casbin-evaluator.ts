import { newEnforcer, type Enforcer, type RoleManager } from 'casbin'
import type { MatchedRule } from '../types.js'
import { readOnlyQuery, type PolicyEvaluator, type PolicyQuery, type PolicyResult } from './evaluator.js'
import { ANY_DOMAIN, casbinOrder, type ModelFile, type PolicyLine } from './policy-files.js'
import type { RequestSource } from './request-mapping.js'
import { RoleGraph } from './role-graph.js'

/** The request value each field of the model's `r` receives, in order. */
export function requestFieldsOf(model: ModelFile): readonly RequestSource[] {
  return model.requestSources
}

export function requestValues(sources: readonly RequestSource[], q: PolicyQuery): unknown[] {
  return sources.map((source) => source.get(q))
}

export function ruleKey(ptype: string, values: readonly string[]): string {
  return `${ptype}\u0000${values.join('\u0000')}`
}

export function domainMatches(requested: string, pattern: string): boolean {
  return pattern === ANY_DOMAIN || pattern === requested
}

/** Depth at which node-casbin's enforcer stops following role links (it builds its role managers with 10). */
export const CASBIN_MAX_HIERARCHY = 10

/**
 * How explanations name a rule Casbin returned: the first policy type holding those exact values, and the
 * file and line where they were written (the last line, when the same rule is written twice).
 */
export function ruleSourcer(model: ModelFile, lines: readonly PolicyLine[], file: string): (rule: readonly string[]) => MatchedRule {
  const locate = ruleLocator(model, lines)
  return (rule) => matchedRuleAt(file, rule, locate(rule))
}

/** Where ruleSourcer finds a rule, without building its answer: the policy type, and the line when one holds it. */
export interface RuleLocation {
  ptype: string
  line: number | undefined
}

export function ruleLocator(model: ModelFile, lines: readonly PolicyLine[]): (rule: readonly string[]) => RuleLocation {
  const sources = new Map<string, number>()
  for (const line of lines) sources.set(ruleKey(line.ptype, line.values), line.line)
  const ptypes = [...model.policyTokens.keys()]
  return (rule) => {
    const ptype = ptypes.find((p) => sources.has(ruleKey(p, rule))) ?? 'p'
    return { ptype, line: sources.get(ruleKey(ptype, rule)) }
  }
}

/** A located rule as an explanation names it: a fresh copy every time, so that callers never share one. */
export function matchedRuleAt(file: string, rule: readonly string[], at: RuleLocation): MatchedRule {
  return at.line === undefined ? { ptype: at.ptype, rule: [...rule] } : { ptype: at.ptype, rule: [...rule], source: `${file}:${at.line}` }
}

/** Role names the policy knows: every role in the hierarchy and every subject of a p line. */
export function policyRoleNames(model: ModelFile, lines: readonly PolicyLine[], graph: RoleGraph): Set<string> {
  const roles = new Set<string>(graph.names)
  const subIndex = model.policyTokens.get('p')?.indexOf('sub') ?? -1
  if (subIndex >= 0) for (const line of lines) if (line.ptype === 'p') roles.add(line.values[subIndex]!)
  return roles
}

/** The effective roles an explanation shows: what the subject and its asserted roles reach, asserted roles first. */
export function explainedRoles(graph: RoleGraph, query: PolicyQuery): string[] {
  const roles = graph.closure([query.subject.id, ...query.subject.roles], query.domain)
  for (const role of query.subject.roles) if (!roles.includes(role)) roles.unshift(role)
  return roles
}

/**
 * The reference evaluator: node-casbin's own enforcer, built once per policy load.
 * It scans every policy line per request, so it serves models the indexed path cannot compile,
 * and is the oracle the indexed path is tested against.
 */
export async function createCasbinEvaluator(model: ModelFile, lines: readonly PolicyLine[], file = 'policy.csv'): Promise<PolicyEvaluator> {
  const fields = requestFieldsOf(model)
  const enforcer: Enforcer = await newEnforcer(model.model)
  for (const line of casbinOrder(model, lines)) {
    model.model.model.get(line.ptype.charAt(0))!.get(line.ptype)!.policy.push([...line.values])
  }
  for (const [ptype, arity] of model.roleArity) {
    if (arity >= 3) await enforcer.addNamedDomainMatchingFunc(ptype, domainMatches)
  }
  await enforcer.buildRoleLinks()

  const matchedRule = ruleSourcer(model, lines, file)
  const graph = new RoleGraph(lines)

  // Roles asserted in the request (and JIT grants) are links that exist for this one request only.
  // enforceExSync runs to completion without yielding, so a per-call overlay on the role manager
  // is never seen by another request.
  // A model without role_definition has no role manager, and asserted roles then mean nothing to it.
  let overlay: { subject: string; roles: readonly string[] } | undefined
  if (model.roleArity.has('g')) {
    const rm = enforcer.getRoleManager() as RoleManager & { syncedHasLink(a: string, b: string, ...d: string[]): boolean }
    const baseHasLink = rm.syncedHasLink.bind(rm)
    rm.syncedHasLink = (a: string, b: string, ...domain: string[]) => {
      if (baseHasLink(a, b, ...domain)) return true
      if (!overlay || a !== overlay.subject) return false
      return overlay.roles.some((role) => role === b || baseHasLink(role, b, ...domain))
    }
  }

  return {
    engine: 'casbin',
    ruleCount: lines.length,
    roles: policyRoleNames(model, lines, graph),
    evaluate(query: PolicyQuery, explain: boolean): PolicyResult {
      let allowed: boolean
      let rule: string[]
      overlay = query.subject.roles.length > 0 ? { subject: query.subject.id, roles: query.subject.roles } : undefined
      try {
        ;[allowed, rule] = enforcer.enforceExSync(...requestValues(fields, readOnlyQuery(query)))
      } catch (err) {
        return { effect: 'error', matched: [], error: (err as Error).message }
      } finally {
        overlay = undefined
      }
      const matched: MatchedRule[] = rule.length > 0 ? [matchedRule(rule)] : []
      const effect = allowed ? 'allow' : matched.length > 0 ? 'deny' : 'none'
      const result: PolicyResult = { effect, matched }
      if (explain) result.roles = explainedRoles(graph, query)
      return result
    },
  }
}
