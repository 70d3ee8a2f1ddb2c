import { FunctionMap, Util } from 'casbin'
import expressionEval from '@casbin/expression-eval'
import { LRUCache } from 'lru-cache'
import type { MatchedRule } from '../types.js'
import { readOnlyQuery, type PolicyEvaluator, type PolicyQuery, type PolicyResult } from './evaluator.js'
import { ANY_DOMAIN, casbinOrder, type ModelFile, type PolicyLine } from './policy-files.js'
import { INDEXED_PATTERN_FUNCTIONS, patternFunction } from './pattern-functions.js'
import { requestSource, type RequestSource } from './request-mapping.js'
import { RoleGraph } from './role-graph.js'
import { CASBIN_MAX_HIERARCHY, explainedRoles, matchedRuleAt, policyRoleNames, requestFieldsOf, ruleLocator, type RuleLocation } from './casbin-evaluator.js'

/*
 * The indexed evaluator answers exactly what node-casbin's enforcer (createCasbinEvaluator) answers, without
 * scanning every policy line. It only takes models whose matcher is a chain of `&&` terms it can index
 * (equalities between request strings and policy fields, "*"-or-equal tests, role functions such as
 * g(r.sub.id, p.x, r.dom) or g2(r.obj.id, p.y), request strings in lists) and pattern tests (keyMatch(r.obj.id, p.obj)
 * and its family) ending in at most one eval(p.x). Casbin evaluates such a matcher left to right and stops at the
 * first false term, so a line whose indexed terms fail yields false without touching its pattern tests or
 * condition, and its effect is "indeterminate", which changes nothing in any effect expression. Only the remaining
 * lines (the candidates) are evaluated, in Casbin's load order (see casbinOrder), through the same effect stream
 * Casbin runs: their pattern tests in matcher order (Casbin's own functions), then their condition.
 */

// CommonJS module: its named exports are only reachable through the default export under ESM.
const { parse, eval: evaluateNode, addBinaryOp } = expressionEval

// Casbin registers `in` on the shared parser just before it compiles a matcher; conditions must parse the same here.
addBinaryOp('in', 1, Util.customIn as unknown as Parameters<typeof addBinaryOp>[2])

type AstNode = { type: string; [key: string]: unknown }

/** Effect values of node-casbin's effector (Effect.Allow, Indeterminate, Deny). */
export const ALLOW = 1
export const INDETERMINATE = 2
export const DENY = 3
const RESULT_TYPE_ERROR = 'matcher result should only be of type boolean, number, or string'

export type EffectKind = 'allow-override' | 'deny-override' | 'allow-and-deny' | 'priority'
/** The policy effects both evaluators (and the planner) support, by the model's expression. */
export const EFFECT_KINDS: Record<string, EffectKind> = {
  'some(where (p_eft == allow))': 'allow-override',
  '!some(where (p_eft == deny))': 'deny-override',
  'some(where (p_eft == allow)) && !some(where (p_eft == deny))': 'allow-and-deny',
  'priority(p_eft) || deny': 'priority',
  'subjectPriority(p_eft) || deny': 'priority',
}

/** A request value the matcher compares as a string: a request field, or a member of one, that is always a string. */
interface RequestString {
  /** The request value it is (request.yaml's name for it), e.g. subject.id. */
  path: string
  get(query: PolicyQuery): string
}

/** One indexed matcher term: which policy field it reads and how a request selects values of that field. */
type Term =
  /** ptype(name, p.field[, domain]); `asserted`: the name is the subject's id, whose asserted roles count too. */
  | { kind: 'role'; field: number; ptype: string; name: RequestString; domain: RequestString | undefined; asserted: boolean }
  | { kind: 'equal'; field: number; request: RequestString }
  | { kind: 'equal-or-any'; field: number; request: RequestString }
  | { kind: 'in-list'; request: RequestString; values: readonly string[] }
  | { kind: 'pattern'; field: number; request: RequestString; name: string; test: (request: string, pattern: string) => boolean }

/** The terms that index policy lines; an `in` list reads no policy field and is tested once per request. */
type FieldTerm = Extract<Term, { kind: 'role' | 'equal' | 'equal-or-any' }>
type PatternTerm = Extract<Term, { kind: 'pattern' }>

/**
 * Why the indexed evaluator did not take a policy, as a stable code (for /metrics) beside the sentence for people:
 * the effect, the matcher's shape, a condition of one line, or a policy with no "p" line.
 */
export const FALLBACK_CODES = ['effect', 'no_policy_lines', 'matcher_eval', 'matcher_term', 'matcher_order', 'no_index_term', 'condition'] as const
export type FallbackCode = (typeof FALLBACK_CODES)[number]

type Condition = (context: Record<string, unknown>) => unknown

interface CompiledCondition {
  evaluate: Condition
  /** Whether it reads p.* fields, which are then set on the context per line (Casbin always sets them). */
  readsPolicyFields: boolean
}

interface CompiledLine {
  values: readonly string[]
  /** undefined: the matcher has no eval or the condition is `true`, so a candidate's result is `true`. */
  condition: CompiledCondition | undefined
  eft: string | undefined
  /**
   * How an explanation names this line (see ruleLocator); its answer is built only for the line that decides, so
   * that a large policy does not hold one per line.
   */
  at: RuleLocation
}

type Trie = Map<string, Trie | number[]>
/**
 * A trie node as evaluate reads it: a Map, or, for the few keys most nodes hold, the pairs in one array
 * ([key, child, key, child, ...]); a large policy has tens of thousands of nodes, and a Map costs several
 * hundred bytes however few keys it has.
 */
type TrieNode = Map<string, TrieNode | number[]> | (string | TrieNode | number[])[]
/** Nodes with at most this many keys become pair arrays: a scan this short costs about what a Map lookup does. */
const PAIRS_MAX = 8

/** The built trie as evaluate reads it: small nodes as pair arrays, and every array at its exact length (push leaves spare room). */
function compact(node: Trie): TrieNode {
  const pairs: (string | TrieNode | number[])[] | undefined = node.size <= PAIRS_MAX ? new Array(node.size * 2) : undefined
  let i = 0
  for (const [key, child] of node) {
    const value = child instanceof Map ? compact(child) : child.slice()
    if (pairs) {
      pairs[i++] = key
      pairs[i++] = value
    } else node.set(key, value as Trie)
  }
  return pairs ?? (node as TrieNode)
}

function childOf(node: TrieNode, key: string): TrieNode | number[] | undefined {
  if (!Array.isArray(node)) return node.get(key)
  for (let i = 0; i < node.length; i += 2) if (node[i] === key) return node[i + 1] as TrieNode | number[]
  return undefined
}

export type IndexedOutcome = { evaluator: PolicyEvaluator } | { code: FallbackCode; reason: string }

function isIdentifier(node: AstNode, name?: string): boolean {
  return node.type === 'Identifier' && (name === undefined || node.name === name)
}

function describe(node: AstNode): string {
  if (node.type === 'CallExpression') {
    const callee = node.callee as AstNode
    return `${callee.type === 'Identifier' ? String(callee.name) : 'a call'}(...)`
  }
  if (typeof node.operator === 'string') return `a "${node.operator}" expression`
  return `a ${node.type}`
}

function sameTree(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const keysA = Object.keys(a)
  const keysB = Object.keys(b)
  if (keysA.length !== keysB.length) return false
  return keysA.every((k) => sameTree((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

/** The left spine of an `&&` chain, in evaluation order. */
function conjuncts(root: AstNode): AstNode[] {
  const out: AstNode[] = []
  let node = root
  while (node.type === 'LogicalExpression' && node.operator === '&&') {
    out.push(node.right as AstNode)
    node = node.left as AstNode
  }
  out.push(node)
  return out.reverse()
}

function referencesAny(node: unknown, names: ReadonlySet<string>): boolean {
  if (!node || typeof node !== 'object') return false
  const n = node as AstNode
  if (n.type === 'ThisExpression') return true
  if (n.type === 'Identifier') return names.has(n.name as string)
  if (n.type === 'MemberExpression') return referencesAny(n.object, names) || (n.computed === true && referencesAny(n.property, names))
  return Object.values(n).some((v) => (Array.isArray(v) ? v.some((x) => referencesAny(x, names)) : referencesAny(v, names)))
}

interface TermContext {
  policyFields: readonly string[]
  requestFields: readonly string[]
  requestSources: readonly RequestSource[]
  roleArity: ReadonlyMap<string, number>
}

function requestString(node: AstNode, ctx: TermContext): RequestString | undefined {
  let field: string | undefined
  let member: string | undefined
  if (node.type === 'Identifier') {
    field = node.name as string
  } else if (node.type === 'MemberExpression' && !node.computed && isIdentifier(node.object as AstNode) && isIdentifier(node.property as AstNode)) {
    field = (node.object as AstNode).name as string
    member = String((node.property as AstNode).name)
  }
  const index = ctx.requestFields.findIndex((f) => `r_${f}` === field)
  if (index < 0) return undefined
  const source = ctx.requestSources[index]!
  const found = member === undefined ? source : requestSource(`${source.path}.${member}`)
  return found?.isString ? { path: found.path, get: found.get as (q: PolicyQuery) => string } : undefined
}

function policyField(node: AstNode, ctx: TermContext): number | undefined {
  if (node.type !== 'Identifier') return undefined
  const index = ctx.policyFields.findIndex((f) => `p_${f}` === node.name)
  return index >= 0 ? index : undefined
}

function isEquality(node: AstNode): boolean {
  return node.type === 'BinaryExpression' && (node.operator === '==' || node.operator === '===')
}

function equality(node: AstNode, ctx: TermContext): { field: number; request: RequestString } | undefined {
  if (!isEquality(node)) return undefined
  const [a, b] = [node.left as AstNode, node.right as AstNode]
  for (const [p, r] of [[a, b], [b, a]] as const) {
    const field = policyField(p, ctx)
    const request = requestString(r, ctx)
    if (field !== undefined && request) return { field, request }
  }
  return undefined
}

function anyTest(node: AstNode, ctx: TermContext): number | undefined {
  if (!isEquality(node)) return undefined
  const [a, b] = [node.left as AstNode, node.right as AstNode]
  for (const [p, s] of [[a, b], [b, a]] as const) {
    const field = policyField(p, ctx)
    if (field !== undefined && s.type === 'Literal' && s.value === '*') return field
  }
  return undefined
}

function termOf(node: AstNode, ctx: TermContext): Term | undefined {
  const callee = node.type === 'CallExpression' ? (node.callee as AstNode) : undefined
  const ptype = callee?.type === 'Identifier' ? (callee.name as string) : undefined
  const arity = ptype === undefined ? undefined : ctx.roleArity.get(ptype)
  if (arity !== undefined) {
    const args = node.arguments as AstNode[]
    // Two fields: links hold everywhere. Three: the "*" domain matcher is set (see createCasbinEvaluator) and RoleGraph follows it.
    if ((arity !== 2 && arity !== 3) || args.length !== arity) return undefined
    const name = requestString(args[0]!, ctx)
    const field = policyField(args[1]!, ctx)
    const domain = arity === 3 ? requestString(args[2]!, ctx) : undefined
    if (!name || field === undefined || (arity === 3 && !domain)) return undefined
    // The asserted roles of the request are links of "g" for the subject's id (see createCasbinEvaluator); a "g"
    // on another name could meet that overlay by coincidence of strings, which is not worth a fast path.
    if (ptype === 'g' && name.path !== 'subject.id') return undefined
    return { kind: 'role', field, ptype: ptype!, name, domain, asserted: ptype === 'g' }
  }
  if (ptype !== undefined && INDEXED_PATTERN_FUNCTIONS.has(ptype)) {
    const args = node.arguments as AstNode[]
    const request = args.length === 2 ? requestString(args[0]!, ctx) : undefined
    const field = args.length === 2 ? policyField(args[1]!, ctx) : undefined
    if (request && field !== undefined) return { kind: 'pattern', field, request, name: ptype, test: patternFunction(ptype) }
    return undefined
  }
  const eq = equality(node, ctx)
  if (eq) return { kind: 'equal', ...eq }
  // (r.x in ("a", "b")), parenthesised without a space so that Casbin's list rewriting leaves the group whole.
  if (node.type === 'BinaryExpression' && node.operator === 'in') {
    const request = requestString(node.left as AstNode, ctx)
    const values = stringList(node.right as AstNode)
    if (request && values) return { kind: 'in-list', request, values }
  }
  if (node.type === 'LogicalExpression' && node.operator === '||') {
    const [a, b] = [node.left as AstNode, node.right as AstNode]
    for (const [star, other] of [[a, b], [b, a]] as const) {
      const field = anyTest(star, ctx)
      const test = equality(other, ctx)
      if (field !== undefined && test && test.field === field) return { kind: 'equal-or-any', field, request: test.request }
    }
  }
  return undefined
}

/** The strings of a list Casbin has rewritten from ("a", "b") to an array of literals. */
function stringList(node: AstNode): string[] | undefined {
  const elements = node.type === 'ArrayExpression' ? (node.elements as (AstNode | null)[]) : []
  if (elements.length === 0 || !elements.every((e) => e?.type === 'Literal' && typeof e.value === 'string')) return undefined
  return elements.map((e) => e!.value as string)
}

function parseOrUndefined(text: string): AstNode | undefined {
  try {
    return parse(text) as unknown as AstNode
  } catch {
    return undefined
  }
}

/**
 * Maps a matcher result to an effect exactly as node-casbin's enforce loop does; undefined for a result of a type
 * Casbin throws on (the evaluator then fails the decision as Casbin would, the planner marks the rule unplannable).
 */
export function effectOf(result: unknown, eft: string | undefined): number | undefined {
  let effect: number
  if (typeof result === 'boolean') effect = result ? ALLOW : INDETERMINATE
  else if (typeof result === 'number') effect = result === 0 ? INDETERMINATE : result
  else if (typeof result === 'string') effect = result === '' ? INDETERMINATE : ALLOW
  else return undefined
  if (eft && effect === ALLOW) return eft === 'allow' ? ALLOW : eft === 'deny' ? DENY : INDETERMINATE
  return effect
}

/**
 * Builds the indexed evaluator for a model it can prove equal to Casbin's enforcer, or says why it cannot.
 * `lines` must come from parsePolicyFile (validated, cycle-free).
 */
export function buildIndexedEvaluator(model: ModelFile, lines: readonly PolicyLine[], file = 'policy.csv'): IndexedOutcome {
  const requestFields = model.requestTokens.get('r') ?? []
  const requestSources = requestFieldsOf(model)
  const policyFields = model.policyTokens.get('p')
  if (!policyFields) return { code: 'matcher_term', reason: 'the model has no "p" policy type' }
  const effect = EFFECT_KINDS[model.effect]
  if (!effect) return { code: 'effect', reason: `the policy effect "${model.effect}" is not one the indexed evaluator handles` }
  // Positions follow Casbin's load order, which the priority effects decide by.
  const pLines = casbinOrder(model, lines).filter((l) => l.ptype === 'p')
  // With no p line Casbin evaluates the matcher once with empty fields, a case not worth a fast path.
  if (pLines.length === 0) return { code: 'no_policy_lines', reason: 'the policy has no "p" lines' }

  const matcher = model.matcher
  const evalNames = Util.getEvalValue(matcher)
  if (evalNames.length > 1) return { code: 'matcher_eval', reason: 'the matcher calls eval more than once' }
  const evalName = evalNames[0]
  if (evalName !== undefined && !policyFields.some((f) => `p_${f}` === evalName)) {
    return { code: 'matcher_eval', reason: `the matcher evaluates "${evalName}", which is not a policy field` }
  }

  const template = parseOrUndefined(Util.bracketCompatible(matcher))
  if (!template) return { code: 'matcher_term', reason: 'the matcher does not parse' }
  const ctx: TermContext = { policyFields, requestFields, requestSources, roleArity: model.roleArity }
  let parts = conjuncts(template)
  // The terms in matcher order, which is the order Casbin tests them in.
  const terms: Term[] = []
  // Casbin's `in` binds more loosely than &&, so `a && b && r.x in ("u", "v")` is `(a && b && r.x) in [...]`. With
  // boolean terms before it, that is true exactly when every term holds and r.x is in the list (false is in no list
  // of strings), the same as one more && term, the last.
  let tailList: Term | undefined
  const tail = template.type === 'BinaryExpression' && template.operator === 'in' && evalName === undefined ? conjuncts(template.left as AstNode) : undefined
  const tailRequest = tail && requestString(tail.at(-1)!, ctx)
  const tailValues = tail && stringList(template.right as AstNode)
  if (tail && tailRequest && tailValues) {
    parts = tail.slice(0, -1)
    tailList = { kind: 'in-list', request: tailRequest, values: tailValues }
  }
  if (evalName !== undefined) {
    const last = parts.pop()!
    const args = last.arguments as AstNode[] | undefined
    if (last.type !== 'CallExpression' || !isIdentifier(last.callee as AstNode, 'eval') || args?.length !== 1 || !isIdentifier(args[0]!, evalName)) {
      return { code: 'matcher_eval', reason: 'eval(...) is not the last term of the matcher, so Casbin evaluates conditions of lines that do not match' }
    }
  }
  for (const part of parts) {
    const term = termOf(part, ctx)
    if (!term) {
      const callee = part.type === 'CallExpression' ? (part.callee as AstNode) : undefined
      const named = callee?.type === 'Identifier' ? (callee.name as string) : undefined
      if (named === 'keyMatch4') {
        return { code: 'matcher_term', reason: 'the matcher calls keyMatch4(...), which fails on requests that match a pattern with groups of its own, so every line it is given must be known' }
      }
      return {
        code: 'matcher_term',
        reason: `the matcher term ${describe(part)} is not one the indexed evaluator handles (equality of a policy field with a request string such as r.sub.id, r.obj.type, r.act or r.dom, a "*"-or-equal test, a request string in a list of strings, a role function on a request string and a policy field (g on the subject id), keyMatch/keyMatch2/keyMatch3/keyMatch5/regexMatch/globMatch/ipMatch of a request string and a policy field, and a last eval(p.x))`,
      }
    }
    terms.push(term)
  }
  if (tailList) terms.push(tailList)
  const fieldTerms = terms.filter((t): t is FieldTerm => t.kind === 'role' || t.kind === 'equal' || t.kind === 'equal-or-any')
  const inLists = terms.filter((t) => t.kind === 'in-list')
  const patterns = terms.filter((t): t is PatternTerm => t.kind === 'pattern')
  if (fieldTerms.length === 0 && patterns.length === 0) return { code: 'no_index_term', reason: 'the matcher has no term to index lines by' }
  // ipMatch is the one pattern test that fails on a request (a value that is no address), and Casbin fails on the
  // first line that reaches it. Candidates reach it exactly as Casbin's lines do when it follows every indexed
  // term; as the first term, every line reaches it, so such a request fails before any index is consulted.
  const guard = terms[0]?.kind === 'pattern' && terms[0].name === 'ipMatch' ? terms[0] : undefined
  const lastIndexed = terms.findLastIndex((t) => t.kind !== 'pattern')
  const early = terms.findIndex((t, i) => t !== guard && t.kind === 'pattern' && t.name === 'ipMatch' && i < lastIndexed)
  if (early >= 0) {
    return {
      code: 'matcher_order',
      reason: 'the matcher calls ipMatch(...) before an indexed term (and not first), so Casbin fails on requests that are no address on lines the index would skip; put it first or after the other terms',
    }
  }

  // Conditions: Casbin splices each line's condition into the matcher text and compiles the result, so do the
  // same, check that the splice kept the matcher's terms intact, and keep the condition's own subtree.
  const roleFunctions = new Set(model.roleArity.keys())
  const conditions = new Map<string, CompiledCondition | undefined>()
  const policyNames = new Set(policyFields.map((f) => `p_${f}`))
  const evalField = evalName === undefined ? -1 : policyFields.findIndex((f) => `p_${f}` === evalName)
  const eftField = policyFields.indexOf('eft')
  const locate = ruleLocator(model, lines)
  const compiled: CompiledLine[] = []
  for (const line of pLines) {
    let condition: CompiledCondition | undefined
    if (evalField >= 0) {
      const source = line.values[evalField]!
      if (!conditions.has(source)) {
        const text = Util.bracketCompatible(Util.replaceEval(matcher, evalName!, Util.escapeAssertion(source)))
        const ast = parseOrUndefined(text)
        if (!ast) return { code: 'condition', reason: `${file}:${line.line}: the matcher with this condition spliced in does not parse` }
        const spliced = conjuncts(ast)
        if (spliced.length !== parts.length + 1 || !parts.every((p, i) => sameTree(p, spliced[i]))) {
          return { code: 'condition', reason: `${file}:${line.line}: the condition changes the structure of the matcher it is spliced into` }
        }
        const node = spliced[parts.length]!
        if (referencesAny(node, roleFunctions)) return { code: 'condition', reason: `${file}:${line.line}: the condition calls a role function or reads "this"` }
        const constantTrue = node.type === 'Literal' && node.value === true
        conditions.set(source, constantTrue ? undefined : { evaluate: (context) => evaluateNode(node as never, context), readsPolicyFields: referencesAny(node, policyNames) })
      }
      condition = conditions.get(source)
    }
    compiled.push({ values: line.values, condition, eft: eftField >= 0 ? line.values[eftField] : undefined, at: locate(line.values) })
  }

  // Trie levels, cheapest pruning first: role terms (their keys are filtered per subject), then plain equalities
  // (one lookup per node), then "*"-or-equal tests (two lookups per node). The order changes nothing in the answer.
  const rank = { role: 0, equal: 1, 'equal-or-any': 2 } as const
  const levels = [...fieldTerms].sort((a, b) => rank[a.kind] - rank[b.kind])
  const building: Trie = new Map()
  const roleValues = levels.map(() => new Set<string>())
  compiled.forEach((line, position) => {
    let node = building
    levels.forEach((term, depth) => {
      const key = line.values[term.field]!
      if (term.kind === 'role') roleValues[depth]!.add(key)
      if (depth === levels.length - 1) {
        const leaf = node.get(key) as number[] | undefined
        if (leaf) leaf.push(position)
        else node.set(key, [position])
      } else {
        let next = node.get(key) as Trie | undefined
        if (!next) node.set(key, (next = new Map()))
        node = next
      }
    })
  })
  const root = compact(building)
  // Without equality or role terms every line is a candidate, and the pattern tests sort them out.
  const everyLine: readonly number[] = compiled.map((_, position) => position)

  const graph = new RoleGraph(lines)
  const graphs = levels.map((term) => (term.kind === 'role' ? (term.ptype === 'g' ? graph : new RoleGraph(lines, term.ptype)) : undefined))
  const holderCaches = levels.map((term) => (term.kind === 'role' ? new LRUCache<string, readonly string[]>({ max: 10_000 }) : undefined))
  const NO_HOLDERS: readonly string[] = []

  /**
   * Names the role term at this depth holds for: its name (the subject's asserted roles too), what they reach; only
   * names some line uses. A name with no links of its own reaches nothing but itself, so the cache keys such names
   * by their asserted roles alone: one entry then serves every subject that asserts the same roles, however many.
   */
  const holdersOf = (depth: number, q: PolicyQuery): readonly string[] => {
    const term = levels[depth] as Extract<Term, { kind: 'role' }>
    const name = term.name.get(q)
    const domain = term.domain ? term.domain.get(q) : ANY_DOMAIN
    const graph = graphs[depth]!
    const linked = graph.hasLinks(name)
    // Length-prefixed parts, so that no two requests share a key whatever their names contain ("-" never starts a length).
    let key = linked ? `${name.length}:${name}${domain.length}:${domain}` : `-${domain.length}:${domain}`
    if (term.asserted) for (const role of q.subject.roles) key += `${role.length}:${role}`
    const cache = holderCaches[depth]!
    let holders = cache.get(key)
    if (!holders) {
      const from = term.asserted ? (linked ? [name, ...q.subject.roles] : q.subject.roles) : linked ? [name] : NO_HOLDERS
      const reached = graph.holders(from, domain, CASBIN_MAX_HIERARCHY)
      holders = [...reached].filter((value) => roleValues[depth]!.has(value))
      cache.set(key, holders)
    }
    if (!linked && roleValues[depth]!.has(name) && !holders.includes(name)) holders = [name, ...holders]
    return holders
  }

  // Scratch space reused by every decision: evaluate is synchronous and never re-entered.
  const leaves: number[][] = []
  const merged: number[] = []
  const holders: (readonly string[])[] = levels.map(() => NO_HOLDERS)
  // Plain functions, not closures made per call: the hot path allocates nothing per visited key.
  function visit(node: TrieNode, key: string, depth: number, q: PolicyQuery): void {
    const next = childOf(node, key)
    if (next === undefined) return
    if (depth === levels.length - 1) leaves.push(next as number[])
    else collect(next as TrieNode, depth + 1, q)
  }
  function collect(node: TrieNode, depth: number, q: PolicyQuery): void {
    const term = levels[depth]!
    if (term.kind === 'role') {
      const names = holders[depth]!
      for (let i = 0; i < names.length; i++) visit(node, names[i]!, depth, q)
    } else {
      const value = term.request.get(q)
      visit(node, value, depth, q)
      if (term.kind === 'equal-or-any' && value !== '*') visit(node, '*', depth, q)
    }
  }

  // One context for every condition of this evaluator, as Casbin builds per line (request and policy fields plus
  // its built-in functions); reusing it is safe because evaluate is synchronous and conditions read a frozen copy.
  const context: Record<string, unknown> = {}
  for (const [name, fn] of FunctionMap.loadFunctionMap().getFunctions()) context[name] = fn
  const requestKeys = requestFields.map((f) => `r_${f}`)
  const policyKeys = policyFields.map((f) => `p_${f}`)
  const patternValues: string[] = patterns.map(() => '')

  return {
    evaluator: {
      engine: 'indexed',
      ruleCount: lines.length,
      roles: policyRoleNames(model, lines, graph),
      evaluate(query: PolicyQuery, explain: boolean): PolicyResult {
        if (guard) {
          try {
            guard.test(guard.request.get(query), '127.0.0.1')
          } catch (err) {
            return { effect: 'error', matched: [], error: (err as Error).message }
          }
        }
        let positions: readonly number[]
        leaves.length = 0
        // A false `in` term makes the matcher false on every line, so none is a candidate.
        if (inLists.every((t) => t.values.includes(t.request.get(query)))) {
          if (levels.length === 0) leaves.push(everyLine as number[])
          else {
            for (let depth = 0; depth < levels.length; depth++) if (levels[depth]!.kind === 'role') holders[depth] = holdersOf(depth, query)
            collect(root, 0, query)
          }
        }
        if (leaves.length === 0) positions = NO_POSITIONS
        else if (leaves.length === 1) positions = leaves[0]!
        else {
          merged.length = 0
          for (const leaf of leaves) for (const p of leaf) merged.push(p)
          merged.sort(ascending)
          positions = merged
        }
        for (let i = 0; i < patterns.length; i++) patternValues[i] = patterns[i]!.request.get(query)

        // The effect stream of node-casbin's default effector, fed only the candidates; every other line
        // would push "indeterminate", whose one visible trace is that deny-override starts from allow.
        let res = effect === 'deny-override'
        let explainAt = -1
        let requestSet = false
        for (const position of positions) {
          const line = compiled[position]!
          let eft: number
          try {
            let result: unknown = true
            for (let i = 0; i < patterns.length; i++) {
              const pattern = patterns[i]!
              if (!pattern.test(patternValues[i]!, line.values[pattern.field]!)) {
                result = false
                break
              }
            }
            const condition = line.condition
            if (condition && result === true) {
              if (!requestSet) {
                const view = readOnlyQuery(query)
                for (let i = 0; i < requestKeys.length; i++) context[requestKeys[i]!] = requestSources[i]!.get(view)
                requestSet = true
              }
              if (condition.readsPolicyFields) for (let i = 0; i < policyKeys.length; i++) context[policyKeys[i]!] = line.values[i]
              result = condition.evaluate(context)
            }
            const mapped = effectOf(result, line.eft)
            if (mapped === undefined) return { effect: 'error', matched: [], error: RESULT_TYPE_ERROR }
            eft = mapped
          } catch (err) {
            return { effect: 'error', matched: [], error: (err as Error).message }
          }
          if (effect === 'allow-and-deny' && eft === ALLOW) {
            res = true
            explainAt = position
          } else if (
            (effect === 'allow-override' && eft === ALLOW) ||
            ((effect === 'deny-override' || effect === 'allow-and-deny') && eft === DENY) ||
            (effect === 'priority' && eft !== INDETERMINATE)
          ) {
            // A deciding effect: Casbin records the line and stops the scan.
            res = eft === ALLOW
            explainAt = position
            break
          }
        }

        const decider = explainAt >= 0 ? compiled[explainAt]! : undefined
        const matched: MatchedRule[] = decider ? [matchedRuleAt(file, decider.values, decider.at)] : []
        const result: PolicyResult = { effect: res ? 'allow' : matched.length > 0 ? 'deny' : 'none', matched }
        if (explain) result.roles = explainedRoles(graph, query)
        return result
      },
    },
  }
}

const NO_POSITIONS: readonly number[] = []
const ascending = (a: number, b: number): number => a - b

/** The indexed evaluator, or undefined when the model is one it cannot prove it handles exactly. */
export function createIndexedEvaluator(model: ModelFile, lines: readonly PolicyLine[], file = 'policy.csv'): PolicyEvaluator | undefined {
  const outcome = buildIndexedEvaluator(model, lines, file)
  return 'evaluator' in outcome ? outcome.evaluator : undefined
}
