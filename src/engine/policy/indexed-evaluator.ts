import { FunctionMap, Util } from 'casbin'
import expressionEval from '@casbin/expression-eval'
import { LRUCache } from 'lru-cache'
import type { MatchedRule } from '../types.js'
import { readOnlyQuery, type PolicyEvaluator, type PolicyQuery, type PolicyResult } from './evaluator.js'
import { casbinOrder, type ModelFile, type PolicyLine } from './policy-files.js'
import { requestSource, type RequestSource } from './request-mapping.js'
import { RoleGraph } from './role-graph.js'
import { CASBIN_MAX_HIERARCHY, explainedRoles, policyRoleNames, requestFieldsOf, ruleSourcer } from './casbin-evaluator.js'

/*
 * The indexed evaluator answers exactly what node-casbin's enforcer (createCasbinEvaluator) answers, without
 * scanning every policy line. It only takes models whose matcher is a chain of `&&` terms it can index
 * (equalities between request strings and policy fields, "*"-or-equal tests, g(r.sub.id, p.x, r.dom)) ending
 * in at most one eval(p.x). Casbin evaluates such a matcher left to right and stops at the first false term,
 * so a line whose indexed terms fail yields false without touching its condition, and its effect is
 * "indeterminate", which changes nothing in any effect expression. Only the remaining lines (the candidates)
 * are evaluated, in Casbin's load order (see casbinOrder), through the same effect stream Casbin runs.
 */

// CommonJS module: its named exports are only reachable through the default export under ESM.
const { parse, eval: evaluateNode, addBinaryOp } = expressionEval

// Casbin registers `in` on the shared parser just before it compiles a matcher; conditions must parse the same here.
addBinaryOp('in', 1, Util.customIn as unknown as Parameters<typeof addBinaryOp>[2])

type AstNode = { type: string; [key: string]: unknown }

/** Effect values of node-casbin's effector (Effect.Allow, Indeterminate, Deny). */
const ALLOW = 1
const INDETERMINATE = 2
const DENY = 3
const RESULT_TYPE_ERROR = 'matcher result should only be of type boolean, number, or string'

type EffectKind = 'allow-override' | 'deny-override' | 'allow-and-deny' | 'priority'
const EFFECT_KINDS: Record<string, EffectKind> = {
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
  | { kind: 'role'; field: number }
  | { kind: 'equal'; field: number; request: RequestString }
  | { kind: 'equal-or-any'; field: number; request: RequestString }
  | { kind: 'in-list'; request: RequestString; values: readonly string[] }

/** The terms that index policy lines; an `in` list reads no policy field and is tested once per request. */
type FieldTerm = Exclude<Term, { kind: 'in-list' }>

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
  /** How an explanation names this line; copied per decision so callers never share it. */
  matched: MatchedRule
}

type Trie = Map<string, Trie | number[]>

export type IndexedOutcome = { evaluator: PolicyEvaluator } | { reason: string }

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
  if (node.type === 'CallExpression' && isIdentifier(node.callee as AstNode, 'g')) {
    const args = node.arguments as AstNode[]
    // The role manager has the "*" domain matcher only for three-field role definitions (see createCasbinEvaluator).
    if (ctx.roleArity.get('g') !== 3 || args.length !== 3) return undefined
    const field = policyField(args[1]!, ctx)
    // Role holders are looked up for the subject's id (with its asserted roles) in the request's domain.
    if (requestString(args[0]!, ctx)?.path !== 'subject.id' || field === undefined || requestString(args[2]!, ctx)?.path !== 'domain') return undefined
    return { kind: 'role', field }
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

/** Maps a matcher result to an effect exactly as node-casbin's enforce loop does. */
function effectOf(result: unknown, eft: string | undefined): number {
  let effect: number
  switch (typeof result) {
    case 'boolean':
      effect = result ? ALLOW : INDETERMINATE
      break
    case 'number':
      effect = result === 0 ? INDETERMINATE : result
      break
    case 'string':
      effect = result === '' ? INDETERMINATE : ALLOW
      break
    default:
      throw new Error(RESULT_TYPE_ERROR)
  }
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
  if (!policyFields) return { reason: 'the model has no "p" policy type' }
  const effect = EFFECT_KINDS[model.effect]
  if (!effect) return { reason: `the policy effect "${model.effect}" is not one the indexed evaluator handles` }
  // Positions follow Casbin's load order, which the priority effects decide by.
  const pLines = casbinOrder(model, lines).filter((l) => l.ptype === 'p')
  // With no p line Casbin evaluates the matcher once with empty fields, a case not worth a fast path.
  if (pLines.length === 0) return { reason: 'the policy has no "p" lines' }

  const matcher = model.matcher
  const evalNames = Util.getEvalValue(matcher)
  if (evalNames.length > 1) return { reason: 'the matcher calls eval more than once' }
  const evalName = evalNames[0]
  if (evalName !== undefined && !policyFields.some((f) => `p_${f}` === evalName)) {
    return { reason: `the matcher evaluates "${evalName}", which is not a policy field` }
  }

  const template = parseOrUndefined(Util.bracketCompatible(matcher))
  if (!template) return { reason: 'the matcher does not parse' }
  const ctx: TermContext = { policyFields, requestFields, requestSources, roleArity: model.roleArity }
  let parts = conjuncts(template)
  const terms: Term[] = []
  // Casbin's `in` binds more loosely than &&, so `a && b && r.x in ("u", "v")` is `(a && b && r.x) in [...]`. With
  // boolean terms before it, that is true exactly when every term holds and r.x is in the list (false is in no list
  // of strings), the same as one more && term.
  const tail = template.type === 'BinaryExpression' && template.operator === 'in' && evalName === undefined ? conjuncts(template.left as AstNode) : undefined
  const tailRequest = tail && requestString(tail.at(-1)!, ctx)
  const tailValues = tail && stringList(template.right as AstNode)
  if (tail && tailRequest && tailValues) {
    parts = tail.slice(0, -1)
    terms.push({ kind: 'in-list', request: tailRequest, values: tailValues })
  }
  if (evalName !== undefined) {
    const last = parts.pop()!
    const args = last.arguments as AstNode[] | undefined
    if (last.type !== 'CallExpression' || !isIdentifier(last.callee as AstNode, 'eval') || args?.length !== 1 || !isIdentifier(args[0]!, evalName)) {
      return { reason: 'eval(...) is not the last term of the matcher, so Casbin evaluates conditions of lines that do not match' }
    }
  }
  for (const part of parts) {
    const term = termOf(part, ctx)
    if (!term) {
      return {
        reason: `the matcher term ${describe(part)} is not one the indexed evaluator handles (equality of a policy field with a request string such as r.sub.id, r.obj.type, r.act or r.dom, a "*"-or-equal test, a request string in a list of strings, g on the subject id, a policy field and the domain, and a last eval(p.x))`,
      }
    }
    terms.push(term)
  }
  const fieldTerms = terms.filter((t): t is FieldTerm => t.kind !== 'in-list')
  const inLists = terms.filter((t) => t.kind === 'in-list')
  if (fieldTerms.length === 0) return { reason: 'the matcher has no term to index lines by' }

  // Conditions: Casbin splices each line's condition into the matcher text and compiles the result, so do the
  // same, check that the splice kept the matcher's terms intact, and keep the condition's own subtree.
  const roleFunctions = new Set(model.roleArity.keys())
  const conditions = new Map<string, CompiledCondition | undefined>()
  const policyNames = new Set(policyFields.map((f) => `p_${f}`))
  const evalField = evalName === undefined ? -1 : policyFields.findIndex((f) => `p_${f}` === evalName)
  const eftField = policyFields.indexOf('eft')
  const matchedRule = ruleSourcer(model, lines, file)
  const compiled: CompiledLine[] = []
  for (const line of pLines) {
    let condition: CompiledCondition | undefined
    if (evalField >= 0) {
      const source = line.values[evalField]!
      if (!conditions.has(source)) {
        const text = Util.bracketCompatible(Util.replaceEval(matcher, evalName!, Util.escapeAssertion(source)))
        const ast = parseOrUndefined(text)
        if (!ast) return { reason: `${file}:${line.line}: the matcher with this condition spliced in does not parse` }
        const spliced = conjuncts(ast)
        if (spliced.length !== parts.length + 1 || !parts.every((p, i) => sameTree(p, spliced[i]))) {
          return { reason: `${file}:${line.line}: the condition changes the structure of the matcher it is spliced into` }
        }
        const node = spliced[parts.length]!
        if (referencesAny(node, roleFunctions)) return { reason: `${file}:${line.line}: the condition calls a role function or reads "this"` }
        const constantTrue = node.type === 'Literal' && node.value === true
        conditions.set(source, constantTrue ? undefined : { evaluate: (context) => evaluateNode(node as never, context), readsPolicyFields: referencesAny(node, policyNames) })
      }
      condition = conditions.get(source)
    }
    compiled.push({ values: line.values, condition, eft: eftField >= 0 ? line.values[eftField] : undefined, matched: matchedRule(line.values) })
  }

  // Trie levels, cheapest pruning first: role terms (their keys are filtered per subject), then plain equalities
  // (one lookup per node), then "*"-or-equal tests (two lookups per node). The order changes nothing in the answer.
  const rank = { role: 0, equal: 1, 'equal-or-any': 2 } as const
  const levels = [...fieldTerms].sort((a, b) => rank[a.kind] - rank[b.kind])
  const root: Trie = new Map()
  const roleValues = new Set<string>()
  compiled.forEach((line, position) => {
    let node = root
    levels.forEach((term, depth) => {
      const key = line.values[term.field]!
      if (term.kind === 'role') roleValues.add(key)
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

  const graph = new RoleGraph(lines)
  const hasRoleTerm = levels.some((t) => t.kind === 'role')
  const holderCache = new LRUCache<string, readonly string[]>({ max: 10_000 })
  const NO_HOLDERS: readonly string[] = []

  /** Names g(r.sub.id, name, r.dom) holds for: the subject, its asserted roles and what they reach; only names some line uses. */
  const holdersOf = (q: PolicyQuery): readonly string[] => {
    // Length-prefixed parts, so that no two requests share a key whatever their names contain.
    let key = `${q.subject.id.length}:${q.subject.id}${q.domain.length}:${q.domain}`
    for (const role of q.subject.roles) key += `${role.length}:${role}`
    let holders = holderCache.get(key)
    if (!holders) {
      const reached = graph.holders([q.subject.id, ...q.subject.roles], q.domain, CASBIN_MAX_HIERARCHY)
      holders = [...reached].filter((name) => roleValues.has(name))
      holderCache.set(key, holders)
    }
    return holders
  }

  // Scratch space reused by every decision: evaluate is synchronous and never re-entered.
  const leaves: number[][] = []
  const merged: number[] = []
  // Plain functions, not closures made per call: the hot path allocates nothing per visited key.
  function visit(node: Trie, key: string, depth: number, q: PolicyQuery, holders: readonly string[]): void {
    const next = node.get(key)
    if (next === undefined) return
    if (depth === levels.length - 1) leaves.push(next as number[])
    else collect(next as Trie, depth + 1, q, holders)
  }
  function collect(node: Trie, depth: number, q: PolicyQuery, holders: readonly string[]): void {
    const term = levels[depth]!
    if (term.kind === 'role') {
      for (let i = 0; i < holders.length; i++) visit(node, holders[i]!, depth, q, holders)
    } else {
      const value = term.request.get(q)
      visit(node, value, depth, q, holders)
      if (term.kind === 'equal-or-any' && value !== '*') visit(node, '*', depth, q, holders)
    }
  }

  // One context for every condition of this evaluator, as Casbin builds per line (request and policy fields plus
  // its built-in functions); reusing it is safe because evaluate is synchronous and conditions read a frozen copy.
  const context: Record<string, unknown> = {}
  for (const [name, fn] of FunctionMap.loadFunctionMap().getFunctions()) context[name] = fn
  const requestKeys = requestFields.map((f) => `r_${f}`)
  const policyKeys = policyFields.map((f) => `p_${f}`)

  return {
    evaluator: {
      engine: 'indexed',
      ruleCount: lines.length,
      roles: policyRoleNames(model, lines, graph),
      evaluate(query: PolicyQuery, explain: boolean): PolicyResult {
        let positions: readonly number[]
        leaves.length = 0
        // A false `in` term makes the matcher false on every line, so none is a candidate.
        if (inLists.every((t) => t.values.includes(t.request.get(query)))) collect(root, 0, query, hasRoleTerm ? holdersOf(query) : NO_HOLDERS)
        if (leaves.length === 0) positions = NO_POSITIONS
        else if (leaves.length === 1) positions = leaves[0]!
        else {
          merged.length = 0
          for (const leaf of leaves) for (const p of leaf) merged.push(p)
          merged.sort(ascending)
          positions = merged
        }

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
            const condition = line.condition
            if (condition) {
              if (!requestSet) {
                const view = readOnlyQuery(query)
                for (let i = 0; i < requestKeys.length; i++) context[requestKeys[i]!] = requestSources[i]!.get(view)
                requestSet = true
              }
              if (condition.readsPolicyFields) for (let i = 0; i < policyKeys.length; i++) context[policyKeys[i]!] = line.values[i]
              result = condition.evaluate(context)
            }
            eft = effectOf(result, line.eft)
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

        const template = explainAt >= 0 ? compiled[explainAt]!.matched : undefined
        const matched: MatchedRule[] = template ? [{ ...template, rule: [...template.rule] }] : []
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
