import { FunctionMap, Util } from 'casbin'
import expressionEval from '@casbin/expression-eval'
import { CASBIN_MAX_HIERARCHY } from '../policy/casbin-evaluator.js'
import { readOnlyQuery, type PolicyQuery } from '../policy/evaluator.js'
import { ALLOW, DENY, EFFECT_KINDS, effectOf, INDETERMINATE, type EffectKind } from '../policy/indexed-evaluator.js'
import { casbinOrder, type ModelFile, type PolicyLine } from '../policy/policy-files.js'
import { RoleGraph } from '../policy/role-graph.js'
import { and, isMatchFunction, not, or, type ComparisonOp, type Condition, type FilterField, type FilterScalar, type PlanFilter } from './filter.js'
import { patternRegex } from './patterns.js'

/*
 * Partial evaluation of a Casbin policy: the subject, tenant, action, resource type and environment are known, the
 * resource's id and attributes are not. Each p line's matcher (its condition spliced in, exactly as Casbin compiles
 * it) is evaluated over abstract values: known values go through the expression language's own operators, so they
 * behave as in a decision; a comparison of an unknown resource field with a known scalar becomes a filter leaf. The
 * lines are then run through the effect's stream symbolically (which resources a line decides for, which still
 * scan on). Whatever the filter cannot express exactly (a computation on an unknown value, a nested attribute
 * whose absence would make Casbin fail the whole decision, a non-boolean result that depends on the resource)
 * stops the plan with the rule's file:line and the reason: a plan is exact or it is not given.
 */

// CommonJS module: its named exports are only reachable through the default export under ESM. Importing
// policy-files.js registers Casbin's `in` on the shared parser, so matchers parse as Casbin parses them.
const { parse, eval: evaluateNode } = expressionEval

type AstNode = { type: string; [key: string]: unknown }

/** The resource values nobody knows while planning; the whole resource and its attribute bag are reachable only through members. */
type Ref = 'resource' | 'resource.attributes' | FilterField

type Value = { known: unknown } | { ref: Ref } | { filter: PlanFilter } | { throws: true }

/** A construct the filter cannot express; the planner names the rule it met it in. */
class NotFilterable extends Error {}

/** Which resources a policy allows and which no rule decides (a just-in-time permission allows those). */
export type PolicyPlan = { allowed: Condition; undecided: Condition } | { unsupported: { rule?: string; reason: string } }

const literal = (value: unknown): AstNode => ({ type: 'Literal', value })

/** Runs one operation of the expression language on known operands, so that known values behave exactly as in a decision. */
function native(node: AstNode): Value {
  try {
    return { known: evaluateNode(node as never, {}) }
  } catch {
    return { throws: true }
  }
}

const FLIPPED: Record<ComparisonOp, ComparisonOp> = { eq: 'eq', ne: 'ne', lt: 'gt', le: 'ge', gt: 'lt', ge: 'le' }
const COMPARISONS: Record<string, ComparisonOp> = { '==': 'eq', '!=': 'ne', '<': 'lt', '<=': 'le', '>': 'gt', '>=': 'ge' }
const ATTRIBUTE_NAME = /^[A-Za-z_][\w-]*$/
/** The expression language refuses these member names (it throws). */
const DISALLOWED_MEMBER = /^__proto__|prototype|constructor$/

const isScalar = (v: unknown): v is FilterScalar => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && !Number.isNaN(v))

function fieldOf(value: Value): FilterField | undefined {
  return 'ref' in value && value.ref !== 'resource' && value.ref !== 'resource.attributes' ? value.ref : undefined
}

function comparison(operator: string, left: Value, right: Value): Value {
  if (operator === 'in') {
    const field = fieldOf(left)
    if (field && 'known' in right && Array.isArray(right.known) && right.known.every(isScalar)) return { filter: { op: 'in', field, values: [...right.known] } }
    throw new NotFilterable('an "in" test the filter cannot express (only a resource field in a list of strings, numbers or booleans)')
  }
  let op = COMPARISONS[operator]
  let field = fieldOf(left)
  let other = right
  if (!field) {
    field = fieldOf(right)
    other = left
    if (op) op = FLIPPED[op]
  }
  if (!op || !field || !('known' in other)) {
    throw new NotFilterable(`the operator "${operator}" applied to the resource's ${'ref' in left || 'ref' in right ? 'fields' : 'values'} in a way the filter cannot express (only ==, !=, <, <=, >, >= between one resource field and a known value)`)
  }
  const value = other.known
  if (value === null || value === undefined) {
    if (op === 'eq') return { filter: { op: 'not', arg: { op: 'exists', field } } }
    if (op === 'ne') return { filter: { op: 'exists', field } }
    // undefined becomes NaN in <, <=, >, >=, so the test is false whatever the resource holds.
    if (value === undefined) return { known: false }
  }
  if (!isScalar(value)) throw new NotFilterable(`a comparison of ${field} with a value that is not a string, number or boolean`)
  return { filter: { op, field, value } }
}

/** The known request values and functions a matcher reads, and which request fields hold the unknown resource. */
interface Scope {
  context: Record<string, unknown>
  unknown: ReadonlyMap<string, Ref>
  resourceType: string
}

function member(scope: Scope, object: Value, property: unknown): Value {
  if ('throws' in object) return object
  const name = String(property)
  if ('known' in object) return native({ type: 'MemberExpression', computed: true, object: literal(object.known), property: literal(property) })
  if ('filter' in object) throw new NotFilterable('reads a member of a comparison')
  if (DISALLOWED_MEMBER.test(name)) return { throws: true }
  if (name in Object.prototype) throw new NotFilterable(`reads "${name}" of ${object.ref}, which is not data`)
  if (object.ref === 'resource') {
    if (name === 'type') return { known: scope.resourceType }
    if (name === 'id') return { ref: 'resource.id' }
    if (name === 'attributes') return { ref: 'resource.attributes' }
    return { known: undefined }
  }
  if (object.ref === 'resource.attributes') {
    // The names request.yaml may name, so that every field of a filter can be mapped to a column.
    if (!ATTRIBUTE_NAME.test(name)) throw new NotFilterable(`reads the attribute "${name}", a name a filter field cannot hold (letters, digits, _ and -, not first a digit)`)
    return { ref: `resource.attributes.${name}` }
  }
  throw new NotFilterable(`reads "${name}" of ${object.ref}: a missing ${object.ref} would make Casbin fail the whole decision, which a filter cannot express`)
}

function logical(scope: Scope, node: AstNode): Value {
  const left = evaluate(scope, node.left as AstNode)
  if ('throws' in left) return left
  const isAnd = node.operator === '&&'
  if ('known' in left) return (isAnd ? !left.known : left.known) ? left : evaluate(scope, node.right as AstNode)
  if ('ref' in left) throw new NotFilterable(`uses ${left.ref} as a truth value`)
  const right = evaluate(scope, node.right as AstNode)
  if ('filter' in right) return { filter: (isAnd ? and(left.filter, right.filter) : or(left.filter, right.filter)) as PlanFilter }
  // With a comparison on the left, the result is that comparison's boolean or the right operand: a filter only when that is a boolean.
  if ('known' in right && typeof right.known === 'boolean') {
    const folded = isAnd ? and(left.filter, right.known) : or(left.filter, right.known)
    return typeof folded === 'boolean' ? { known: folded } : { filter: folded }
  }
  const yields = 'throws' in right ? 'an error for some resources' : 'ref' in right ? `${right.ref} itself, which need not be a boolean` : 'a value that is not a boolean'
  throw new NotFilterable(`"${String(node.operator)}" after a test of the resource yields ${yields}`)
}

function call(scope: Scope, node: AstNode): Value {
  const callee = node.callee as AstNode
  const fn = evaluate(scope, callee)
  const args = (node.arguments as AstNode[]).map((a) => evaluate(scope, a))
  if ('throws' in fn) return fn
  const thrown = args.find((a) => 'throws' in a)
  if (thrown) return thrown
  if (args.every((a) => 'known' in a) && 'known' in fn) {
    return native({ type: 'CallExpression', callee: literal(fn.known), arguments: args.map((a) => literal((a as { known: unknown }).known)) })
  }
  const name = callee.type === 'Identifier' ? String(callee.name) : 'a function'
  const field = args[0] && fieldOf(args[0])
  const pattern = args[1]
  // Only Casbin's own function under its name, on a resource field, with a pattern the policy gives.
  const casbin = 'known' in fn && fn.known === scope.context[name] && args.length === 2 && field && pattern && 'known' in pattern && typeof pattern.known === 'string'
  if (casbin && name === 'keyMatch') return { filter: { op: 'keyMatch', field, pattern: pattern.known as string } }
  if (casbin && isMatchFunction(name)) {
    const compiled = patternRegex(name, pattern.known as string)
    if ('problem' in compiled) throw new NotFilterable(`calls ${name}(${field}, ${JSON.stringify(pattern.known)}), which the filter cannot express: ${compiled.problem}`)
    return { filter: { op: 'matches', field, function: name, pattern: pattern.known as string, regex: compiled.regex } }
  }
  throw new NotFilterable(`calls ${name}(...) on the resource, which the filter cannot express (of the functions, only keyMatch, keyMatch2-5, regexMatch and globMatch of a resource field and a pattern)`)
}

function evaluate(scope: Scope, node: AstNode): Value {
  switch (node.type) {
    case 'Literal':
      return { known: node.value }
    case 'Identifier': {
      const name = node.name as string
      const ref = scope.unknown.get(name)
      return ref ? { ref } : { known: scope.context[name] }
    }
    case 'MemberExpression': {
      const object = evaluate(scope, node.object as AstNode)
      if (!node.computed) return member(scope, object, (node.property as AstNode).name)
      const property = evaluate(scope, node.property as AstNode)
      if ('throws' in property) return 'throws' in object ? object : property
      if (!('known' in property)) throw new NotFilterable('reads a member named by the resource')
      return member(scope, object, property.known)
    }
    case 'BinaryExpression': {
      const left = evaluate(scope, node.left as AstNode)
      const right = evaluate(scope, node.right as AstNode)
      if ('throws' in left) return left
      if ('throws' in right) return right
      if ('known' in left && 'known' in right) return native({ type: 'BinaryExpression', operator: node.operator, left: literal(left.known), right: literal(right.known) })
      return comparison(node.operator as string, left, right)
    }
    case 'LogicalExpression':
      return logical(scope, node)
    case 'UnaryExpression': {
      const argument = evaluate(scope, node.argument as AstNode)
      if ('throws' in argument) return argument
      if ('known' in argument) return native({ type: 'UnaryExpression', operator: node.operator, argument: literal(argument.known) })
      if ('filter' in argument && node.operator === '!') return { filter: not(argument.filter) as PlanFilter }
      throw new NotFilterable(`applies "${String(node.operator)}" to the resource`)
    }
    case 'CallExpression':
      return call(scope, node)
    case 'ConditionalExpression': {
      const test = evaluate(scope, node.test as AstNode)
      if ('throws' in test) return test
      if (!('known' in test)) throw new NotFilterable('chooses with "?:" on the resource')
      return evaluate(scope, (test.known ? node.consequent : node.alternate) as AstNode)
    }
    case 'ArrayExpression': {
      const elements = (node.elements as AstNode[]).map((e) => evaluate(scope, e))
      const thrown = elements.find((e) => 'throws' in e)
      if (thrown) return thrown
      if (!elements.every((e) => 'known' in e)) throw new NotFilterable('builds a list from the resource')
      return { known: elements.map((e) => (e as { known: unknown }).known) }
    }
    default:
      throw new NotFilterable(`uses ${node.type}, which the planner does not evaluate`)
  }
}

/** What one line does for a resource: a fixed effect (or a failure of the whole decision), or an effect under a filter. */
type LineOutcome = { effect: number | 'throws' } | { when: PlanFilter; effect: number }

/** The effect stream's state, symbolically: resources already allowed, and resources the scan still reaches. */
interface ScanState {
  allowed: Condition
  scanning: Condition
}

/** One line's effect fed to the effect stream, as node-casbin's default effector does for each policy line. */
function feed(kind: EffectKind, state: ScanState, outcome: LineOutcome): void {
  if (outcome.effect === 'throws') {
    // The decision fails (and denies) for every resource that reaches this line.
    state.scanning = false
    return
  }
  const when: Condition = 'when' in outcome ? outcome.when : true
  const effect = outcome.effect
  if (effect === INDETERMINATE) return
  if (effect === ALLOW && kind !== 'deny-override') {
    // Under allow-override the resources still scanning are exactly those not yet allowed, and allow-and-deny ends
    // with `allowed AND scanning` (scanning only shrinks): in both, `allowed OR (scanning AND when)` is `allowed OR when`.
    state.allowed = or(state.allowed, kind === 'priority' ? and(state.scanning, when) : when)
    // allow-and-deny keeps scanning after an allow (a later deny still wins); the others stop.
    if (kind !== 'allow-and-deny') state.scanning = and(state.scanning, not(when))
    return
  }
  // Any other effect decides in the priority effects; only a deny does in the two deny effects.
  if (kind === 'priority' || (effect === DENY && kind !== 'allow-override')) state.scanning = and(state.scanning, not(when))
}

function settleScan(kind: EffectKind, state: ScanState): { allowed: Condition; undecided: Condition } {
  switch (kind) {
    case 'allow-override':
    case 'priority':
      return { allowed: state.allowed, undecided: state.scanning }
    case 'deny-override':
      return { allowed: state.scanning, undecided: false }
    case 'allow-and-deny':
      return { allowed: and(state.allowed, state.scanning), undecided: and(not(state.allowed), state.scanning) }
  }
}

/** A role function as Casbin's role manager answers it, with the request's asserted roles linked to its subject. */
function roleFunction(graph: RoleGraph, query: PolicyQuery) {
  return (...args: unknown[]): boolean => {
    const name = String(args[0] || '')
    const role = String(args[1] || '')
    const domain = args.length > 2 ? String(args[2]) : '*'
    const names = name === query.subject.id ? [name, ...query.subject.roles] : [name]
    return graph.holders(names, domain, CASBIN_MAX_HIERARCHY).has(role)
  }
}

const UNKNOWN_SOURCES = new Set(['resource', 'resource.id', 'resource.attributes'])

export interface Planner {
  /** Which resources of `query.resource.type` the policy allows; the query's resource id and attributes are ignored. */
  plan(query: PolicyQuery): PolicyPlan
}

/** A planner for one loaded policy (lines as parsePolicyFile returns them). */
export function createPlanner(model: ModelFile, lines: readonly PolicyLine[], file = 'policy.csv'): Planner {
  const kind = EFFECT_KINDS[model.effect]
  // Ordered on first use: most policies are never planned, and a load should not pay for it.
  let ordered: PolicyLine[] | undefined
  const policyTokens = model.policyTokens.get('p') ?? []
  const requestTokens = model.requestTokens.get('r') ?? []
  const evalNames = Util.getEvalValue(model.matcher)
  let graphs: Map<string, RoleGraph> | undefined
  const eftIndex = policyTokens.indexOf('eft')
  const asts = new Map<string, AstNode | Error>()

  const matcherOf = (line: PolicyLine): AstNode => {
    let text = model.matcher
    for (const name of evalNames) {
      const index = policyTokens.findIndex((t) => `p_${t}` === name)
      if (index < 0) throw new NotFilterable(`the matcher evaluates "${name}", which is not a policy field`)
      text = Util.replaceEval(text, name, Util.escapeAssertion(line.values[index]!))
    }
    let ast = asts.get(text)
    if (!ast) {
      try {
        ast = parse(Util.bracketCompatible(text)) as unknown as AstNode
      } catch (err) {
        ast = err as Error
      }
      asts.set(text, ast)
    }
    if (ast instanceof Error) throw new NotFilterable('the matcher with this condition spliced in does not parse')
    return ast
  }

  return {
    plan(query) {
      if (!kind) return { unsupported: { reason: `the policy effect "${model.effect}" is not one the planner handles` } }
      ordered ??= casbinOrder(model, lines).filter((l) => l.ptype === 'p')
      graphs ??= new Map([...model.roleArity.keys()].map((ptype) => [ptype, new RoleGraph(lines, ptype)]))
      const pLines = ordered
      if (pLines.length === 0 || !model.matcher.includes('p_')) return { unsupported: { reason: 'the policy has no "p" line the matcher reads' } }
      const scope = scopeOf(model, requestTokens, graphs, query)
      const state: ScanState = { allowed: false, scanning: true }
      for (const line of pLines) {
        let outcome: LineOutcome
        try {
          policyTokens.forEach((token, i) => (scope.context[`p_${token}`] = line.values[i]))
          // Casbin puts its functions over the parameters of the same name.
          Object.assign(scope.context, scope.functions)
          outcome = lineOutcome(evaluate(scope, matcherOf(line)), eftIndex >= 0 ? line.values[eftIndex] : undefined)
        } catch (err) {
          if (err instanceof NotFilterable) return { unsupported: { rule: `${file}:${line.line}`, reason: err.message } }
          throw err
        }
        feed(kind, state, outcome)
        if (state.scanning === false) break
      }
      const settled = settleScan(kind, state)
      if (exceeds(settled.allowed, MAX_FILTER_NODES) || exceeds(settled.undecided, MAX_FILTER_NODES)) {
        return { unsupported: { reason: `the filter would have more than ${MAX_FILTER_NODES} nodes (many conditional rules under a priority effect); plan a narrower action or type` } }
      }
      return settled
    },
  }
}

/** Largest filter a plan answers with: an answer is meant to become one query. */
const MAX_FILTER_NODES = 10_000

/** Whether a filter has more than `limit` nodes, counted as it serialises (shared subtrees count every time). */
function exceeds(filter: Condition, limit: number): boolean {
  let count = 0
  const stack: Condition[] = [filter]
  while (stack.length > 0) {
    const node = stack.pop()!
    if (typeof node === 'boolean') continue
    if (++count > limit) return true
    if (node.op === 'and' || node.op === 'or') stack.push(...node.args)
    else if (node.op === 'not') stack.push(node.arg)
  }
  return false
}

function lineOutcome(result: Value, eft: string | undefined): LineOutcome {
  if ('throws' in result) return { effect: 'throws' }
  if ('known' in result) return { effect: effectOf(result.known, eft) ?? 'throws' }
  if ('ref' in result) throw new NotFilterable(`the matcher's result is ${result.ref} itself, whose type decides the effect`)
  return { when: result.filter, effect: effectOf(true, eft)! }
}

function scopeOf(model: ModelFile, requestTokens: readonly string[], graphs: ReadonlyMap<string, RoleGraph>, query: PolicyQuery): Scope & { functions: Record<string, unknown> } {
  const view = readOnlyQuery(query)
  const context: Record<string, unknown> = {}
  const unknown = new Map<string, Ref>()
  model.requestSources.forEach((source, i) => {
    const name = `r_${requestTokens[i]}`
    if (UNKNOWN_SOURCES.has(source.path) || source.path.startsWith('resource.attributes.')) unknown.set(name, source.path as Ref)
    else context[name] = source.get(view)
  })
  const functions: Record<string, unknown> = {}
  for (const [name, fn] of FunctionMap.loadFunctionMap().getFunctions()) functions[name] = fn
  for (const [ptype, graph] of graphs) functions[ptype] = roleFunction(graph, query)
  return { context, unknown, resourceType: query.resource.type, functions }
}
