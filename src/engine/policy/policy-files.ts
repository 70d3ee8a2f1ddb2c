import { newModelFromString, BracketAwareCsvParser, FunctionMap, Util, type Model } from 'casbin'
import expressionEval from '@casbin/expression-eval'
import { PATTERN_ARGUMENT_FUNCTIONS, patternProblem } from './pattern-functions.js'
import { GUESSED_SOURCES, PDP_REQUEST, requestSource, type DeclaredRequestMapping, type RequestSource } from './request-mapping.js'

/** A problem in a policy file, located precisely enough for an operator to fix it. */
export class PolicyFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly problem: string,
  ) {
    super(`${file}${line === undefined ? '' : `:${line}`}: ${problem}`)
    this.name = 'PolicyFileError'
  }
}

/** Effects node-casbin's default effector implements; anything else fails at enforce time, so we refuse it at load. */
// CommonJS module: its named exports are only reachable through the default export under ESM.
const parseExpression = expressionEval.parse
// Casbin registers `in` on this shared parser before it compiles a matcher; validation must parse the same language.
expressionEval.addBinaryOp('in', 1, Util.customIn as unknown as Parameters<typeof expressionEval.addBinaryOp>[2])

const SUPPORTED_EFFECTS = new Set([
  'some(where (p.eft == allow))',
  '!some(where (p.eft == deny))',
  'some(where (p.eft == allow)) && !some(where (p.eft == deny))',
  'priority(p.eft) || deny',
  'subjectPriority(p.eft) || deny',
])

/** Casbin's built-in functions: the only calls a condition may make (a matcher may also call role functions and eval). */
const BUILTIN_FUNCTIONS: ReadonlySet<string> = new Set(FunctionMap.loadFunctionMap().getFunctions().keys())

/** Property names that lead from a request value to functions and prototypes, never to data. */
const FORBIDDEN_PROPERTIES = new Set(['constructor', '__proto__', 'prototype'])

const SECTIONS: Record<string, string> = {
  request_definition: 'r',
  policy_definition: 'p',
  role_definition: 'g',
  policy_effect: 'e',
  matchers: 'm',
}

export interface ModelFile {
  model: Model
  /** The model text, from which a fresh Casbin model can be made. */
  source: string
  /** Request tokens per request type, e.g. r → [sub, dom, obj, act, env]. */
  requestTokens: Map<string, string[]>
  /** The request value each field of `r` receives, in the model's order. */
  requestSources: RequestSource[]
  /** Policy tokens per policy type, e.g. p → [sub, dom, obj, act, cond, eft]. */
  policyTokens: Map<string, string[]>
  /** Number of fields per role type, e.g. g → 3. */
  roleArity: Map<string, number>
  matcher: string
  effect: string
}

export interface PolicyLine {
  ptype: string
  values: string[]
  line: number
}

/**
 * Parses model.conf. `request` is what request.yaml declares, when the directory has one; without it the model's
 * request fields must be among the PDP's own (sub, dom, obj, act, env).
 */
export function parseModelFile(text: string, file = 'model.conf', request?: DeclaredRequestMapping): ModelFile {
  const keyLines = new Map<string, number>()
  let section: string | undefined
  // Read as Casbin's config reader does: a comment starts at any "#" or ";", and a line ending in "\" continues
  // on the next one. A definition is reported at the line where it starts.
  const define = (text: string, line: number) => {
    const eq = text.indexOf('=')
    if (eq <= 0) throw new PolicyFileError(file, line, `expected "key = value", got "${text}"`)
    if (section === undefined) throw new PolicyFileError(file, line, 'definition outside of a section')
    const key = text.slice(0, eq).trim()
    const prefix = SECTIONS[section]!
    if (!new RegExp(`^${prefix}\\d*$`).test(key)) {
      throw new PolicyFileError(file, line, `key "${key}" does not belong in [${section}] (expected ${prefix}, ${prefix}2, ...)`)
    }
    keyLines.set(key, line)
  }
  let pending: { text: string; line: number } | undefined
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    let raw = lines[i]!
    for (const comment of ['#', ';']) {
      const at = raw.indexOf(comment)
      if (at >= 0) raw = raw.slice(0, at)
    }
    raw = raw.trim()
    if (raw === '') continue
    const header = /^\[(.+)\]$/.exec(raw)
    if (header) {
      if (pending) define(pending.text, pending.line)
      pending = undefined
      section = header[1]!.trim()
      if (!(section in SECTIONS)) throw new PolicyFileError(file, i + 1, `unknown section [${section}]`)
      continue
    }
    const continued = raw.endsWith('\\')
    const part = continued ? raw.slice(0, -1).trim() : raw
    pending = { text: (pending?.text ?? '') + part, line: pending?.line ?? i + 1 }
    if (!continued) {
      define(pending.text, pending.line)
      pending = undefined
    }
  }
  if (pending) define(pending.text, pending.line)
  for (const required of ['r', 'p', 'e', 'm']) {
    if (!keyLines.has(required)) {
      const name = Object.entries(SECTIONS).find(([, v]) => v === required)![0]
      throw new PolicyFileError(file, undefined, `missing "${required} = ..." in [${name}]`)
    }
  }

  let model: Model
  try {
    model = newModelFromString(text)
  } catch (err) {
    throw new PolicyFileError(file, undefined, `not a valid Casbin model: ${(err as Error).message}`)
  }

  const tokensOf = (sec: string) => {
    const out = new Map<string, string[]>()
    for (const [key, assertion] of model.model.get(sec) ?? []) {
      out.set(key, assertion.tokens.map((t) => t.slice(key.length + 1)))
    }
    return out
  }
  for (const [key, line] of keyLines) {
    const sec = key.charAt(0)
    if ((sec === 'p' || sec === 'g') && !model.model.get(sec)?.has(key)) {
      throw new PolicyFileError(file, line, `"${key}" would be ignored: Casbin reads ${sec}, ${sec}2, ${sec}3, ... only up to the first one missing`)
    }
  }
  const requestTokens = tokensOf('r')
  const requestSources = requestSourcesOf(requestTokens.get('r') ?? [], file, keyLines.get('r'), request)
  const policyTokens = tokensOf('p')
  const roleArity = new Map<string, number>()
  for (const [key, assertion] of model.model.get('g') ?? []) {
    roleArity.set(key, assertion.value.split(',').length)
  }

  const effect = model.model.get('e')!.get('e')!.value
  const effectRaw = effect.replace(/p_eft/g, 'p.eft')
  if (!SUPPORTED_EFFECTS.has(effectRaw)) {
    throw new PolicyFileError(file, keyLines.get('e'), `unsupported policy effect "${effectRaw}"`)
  }

  const matcher = model.model.get('m')!.get('m')!.value
  checkExpression(matcher, {
    file,
    line: keyLines.get('m'),
    what: 'matcher',
    names: expressionNames(requestTokens, policyTokens, roleArity),
  })
  if (effectRaw === 'subjectPriority(p.eft) || deny' && !roleArity.has('g')) {
    // Casbin's loader orders lines by the depth of their subject in g, and fails without one.
    throw new PolicyFileError(file, keyLines.get('e'), 'subjectPriority(p.eft) orders lines by the role hierarchy "g", which the model does not define')
  }
  return { model, source: text, requestTokens, requestSources, policyTokens, roleArity, matcher, effect }
}

function requestSourcesOf(fields: string[], file: string, line: number | undefined, request: DeclaredRequestMapping | undefined): RequestSource[] {
  if (!request) {
    return fields.map((field) => {
      const found = PDP_REQUEST.get(field)
      if (found) return found
      throw new PolicyFileError(file, line, `request field "r.${field}" is not one the PDP supplies (${[...PDP_REQUEST.keys()].join(', ')}); name the request value it receives in request.yaml`)
    })
  }
  for (const [field, declared] of request.fields) {
    if (!fields.includes(field)) throw new PolicyFileError(request.file, declared.line, `the model's request_definition has no field "${field}" (it has ${fields.join(', ')})`)
  }
  return fields.map((field) => {
    const guess = Object.hasOwn(GUESSED_SOURCES, field) ? GUESSED_SOURCES[field] : undefined
    const found = request.fields.get(field)?.source ?? (guess === undefined ? undefined : requestSource(guess))
    if (found) return found
    throw new PolicyFileError(file, line, `request field "r.${field}" receives no request value: name one in ${request.file} (for example "${field}: resource.id")`)
  })
}

/** Names an expression may read (request and policy fields) and call (built-ins, plus role functions and eval in a matcher). */
interface ExpressionNames {
  values: Set<string>
  functions: Set<string>
}

function expressionNames(
  requestTokens: Map<string, string[]>,
  policyTokens: Map<string, string[]>,
  roleArity?: Map<string, number>,
): ExpressionNames {
  const values = new Set<string>()
  for (const [key, tokens] of requestTokens) for (const t of tokens) values.add(`${key}_${t}`)
  for (const [key, tokens] of policyTokens) for (const t of tokens) values.add(`${key}_${t}`)
  const functions = new Set(BUILTIN_FUNCTIONS)
  if (roleArity) {
    for (const key of roleArity.keys()) functions.add(key)
    functions.add('eval')
  }
  return { values, functions }
}

interface ExpressionCheck {
  file: string
  line: number | undefined
  what: string
  names: ExpressionNames
}

type AstNode = { type: string; [k: string]: unknown }

/**
 * Operators that would write rather than read. The expression parser rejects most of them, but reads `a++` as
 * `a + +false`, so they are found in the text itself (string literals skipped), longest operator first.
 */
const WRITING_OPERATOR = /^(?:>>>=|<<=|>>=|\*\*=|&&=|\|\|=|\?\?=|\+\+|--|[-+*/%&|^]=|=(?!=))/
const COMPARISON = /^(?:===|!==|==|!=|<=|>=)/

function writingOperator(expression: string): string | undefined {
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i]!
    if (c === '"' || c === "'") {
      for (i++; i < expression.length && expression[i] !== c; i++) if (expression[i] === '\\') i++
      continue
    }
    const rest = expression.slice(i)
    const comparison = COMPARISON.exec(rest)
    if (comparison) {
      i += comparison[0].length - 1
      continue
    }
    const writing = WRITING_OPERATOR.exec(rest)
    if (writing) return writing[0]
  }
  return undefined
}

/** When Casbin rewrites ` (…)` groups that hold a comma into `[…]` lists: whenever the text has ` in ` and ` (`. */
const rewritesLists = (text: string) => text.includes(' in ') && text.includes(' (')
const IN_LIST_NOTE =
  ' as Casbin compiles it (because it uses "in", Casbin turns every " (...)" group holding a comma into a list, up to the first ")")'

/**
 * Parses an expression as Casbin will and holds it to pure data: it may read request and policy fields, use
 * operators, literals and `in`, and call Casbin's built-in functions; any other call, any assignment and any
 * step to a prototype or constructor is refused here, naming the offending token, rather than met at decision time.
 */
function checkExpression(expression: string, check: ExpressionCheck): void {
  const refuse = (problem: string): never => {
    throw new PolicyFileError(check.file, check.line, `${check.what} ${problem}`)
  }
  const escaped = Util.escapeAssertion(expression)
  const operator = writingOperator(escaped)
  if (operator !== undefined) refuse(`uses "${operator}": policies are data and may not assign`)
  let ast: AstNode
  try {
    ast = parseExpression(Util.bracketCompatible(escaped)) as unknown as AstNode
  } catch (err) {
    return refuse(`does not parse${rewritesLists(escaped) ? IN_LIST_NOTE : ''}: ${(err as Error).message}`)
  }
  const shown = (name: string) => name.replace(/^([rp]\d*)_/, '$1.')
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return
    const n = node as AstNode
    switch (n.type) {
      case 'Identifier': {
        const name = n.name as string
        if (!check.names.values.has(name)) {
          refuse(check.names.functions.has(name) ? `uses the function "${name}" without calling it` : `refers to unknown name "${shown(name)}"`)
        }
        return
      }
      case 'ThisExpression':
        return refuse('reads "this"')
      case 'CallExpression': {
        const callee = n.callee as AstNode
        if (callee.type !== 'Identifier') {
          // What the callee reads is refused first, so the message names the deepest offending token.
          visit(callee)
          const method = callee.type === 'MemberExpression' && !callee.computed ? String((callee.property as AstNode).name) : undefined
          refuse(method ? `calls the method "${method}": only Casbin's built-in functions may be called` : 'calls something other than a named function')
        }
        const name = callee.name as string
        if (!check.names.functions.has(name)) refuse(`calls "${shown(name)}", which is not one of Casbin's built-in functions`)
        ;(n.arguments as unknown[]).forEach(visit)
        if (PATTERN_ARGUMENT_FUNCTIONS.has(name)) checkPatternArgument(name, (n.arguments as AstNode[])[1], refuse)
        return
      }
      case 'BinaryExpression':
        // Casbin's `in` looks a value up in a list; on a single value (`in ("a")` is the string "a") it always fails.
        if (n.operator === 'in' && (n.right as AstNode).type === 'Literal') refuse('uses "in" on a single value: write a list of two or more, ("a", "b"), or "=="')
        // It also binds more loosely than && and ||, so what follows it joins the list side, which is then no list.
        if (n.operator === 'in' && (n.right as AstNode).type === 'LogicalExpression') {
          refuse('has "&&" or "||" after "in": Casbin\'s in binds more loosely than both, so "x in (...) && y" reads "x in ((...) && y)"; make the in test the last term')
        }
        break
      case 'MemberExpression': {
        visit(n.object)
        const property = n.property as AstNode
        const name = !n.computed ? property.name : property.type === 'Literal' ? property.value : undefined
        if (typeof name === 'string' && FORBIDDEN_PROPERTIES.has(name)) refuse(`reads "${name}", which is not data`)
        if (n.computed) visit(property)
        return
      }
    }
    for (const value of Object.values(n)) {
      if (Array.isArray(value)) value.forEach(visit)
      else if (value && typeof value === 'object') visit(value)
    }
  }
  visit(ast)
}

/**
 * Casbin compiles a condition inside the matcher: it splices the text in place of eval(...) and then rewrites
 * list groups over the whole result, which can break a condition that parses on its own (an `in ("a", "b")`
 * list after "&& " loses its closing parenthesis). Such a condition would fail at every decision; refuse it here.
 */
function checkSplice(matcher: string, evalName: string, condition: string, where: { file: string; line: number; what: string }): void {
  const spliced = Util.replaceEval(matcher, evalName, Util.escapeAssertion(condition))
  try {
    parseExpression(Util.bracketCompatible(spliced))
  } catch (err) {
    const note = rewritesLists(spliced) ? IN_LIST_NOTE : ''
    throw new PolicyFileError(where.file, where.line, `${where.what} does not parse once spliced into the matcher${note}: ${(err as Error).message}`)
  }
}

/**
 * The pattern a call of keyMatch2-5, regexMatch, globMatch or ipMatch receives: a literal is checked here as a policy
 * line's value is (patternProblem); a request value is refused, since a caller would then write the pattern (one
 * naming a parameter badly hangs Casbin, a regular expression can be made slow). ipMatch's failing is no such risk.
 */
function checkPatternArgument(fn: string, arg: AstNode | undefined, refuse: (problem: string) => never): void {
  if (arg?.type === 'Literal' && typeof arg.value === 'string') {
    const problem = patternProblem(fn, arg.value)
    if (problem) refuse(`calls ${problem}`)
  }
  let root = arg
  while (root?.type === 'MemberExpression') root = root.object as AstNode
  if (fn !== 'ipMatch' && root?.type === 'Identifier' && /^r\d*_/.test(root.name as string)) {
    refuse(`passes the request value "${String(root.name).replace('_', '.')}" as the pattern of ${fn}: the pattern must come from the policy`)
  }
}

/** The calls of pattern functions in a matcher, with the name their pattern argument reads (p_obj, r_obj, ...). */
function patternCalls(matcher: string): { fn: string; pattern: string }[] {
  const calls: { fn: string; pattern: string }[] = []
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return
    const n = node as AstNode
    if (n.type === 'CallExpression' && (n.callee as AstNode).type === 'Identifier' && PATTERN_ARGUMENT_FUNCTIONS.has((n.callee as AstNode).name as string)) {
      let arg = (n.arguments as AstNode[])[1]
      while (arg?.type === 'MemberExpression') arg = arg.object as AstNode
      if (arg?.type === 'Identifier') calls.push({ fn: (n.callee as AstNode).name as string, pattern: arg.name as string })
    }
    for (const value of Object.values(n)) {
      if (Array.isArray(value)) value.forEach(visit)
      else if (value && typeof value === 'object') visit(value)
    }
  }
  visit(parseExpression(Util.bracketCompatible(matcher)))
  return calls
}

/** A role link in this domain applies in every tenant. */
export const ANY_DOMAIN = '*'

const csv = new BracketAwareCsvParser()

/** Splits one policy line exactly as node-casbin's loader does, so that what we validate is what Casbin sees. */
export function splitPolicyLine(line: string): string[] | null {
  const tokens = csv.parse(line)
  if (!tokens || !tokens[0]) return null
  return tokens[0].map((v, i) => {
    let value = v
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    return i === 0 ? value.trim() : value.replace(/""/g, '"').trim()
  })
}

export function parsePolicyFile(text: string, model: ModelFile, file = 'policy.csv'): PolicyLine[] {
  const out: PolicyLine[] = []
  const lines = text.split(/\r?\n/)
  const conditionNames = expressionNames(model.requestTokens, new Map())
  const patterns = patternCalls(model.matcher)
  // Roles, tenants, types, actions and conditions repeat from line to line: one string each, however many lines.
  const shared = new Map<string, string>()
  const intern = (value: string) => {
    const known = shared.get(value)
    if (known !== undefined) return known
    shared.set(value, value)
    return value
  }
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue
    let fields: string[] | null
    try {
      fields = splitPolicyLine(raw)
    } catch (err) {
      throw new PolicyFileError(file, i + 1, `cannot split line: ${(err as Error).message}`)
    }
    if (!fields || fields.length === 0) continue
    const [ptype, ...values] = fields as [string, ...string[]]
    const policyTokens = model.policyTokens.get(ptype)
    const arity = policyTokens?.length ?? model.roleArity.get(ptype)
    if (arity === undefined) {
      const types = [...model.policyTokens.keys(), ...model.roleArity.keys()].join(', ')
      throw new PolicyFileError(file, i + 1, `unknown policy type "${ptype}" (the model defines ${types})`)
    }
    if (values.length !== arity) {
      const expected = policyTokens ? policyTokens.join(', ') : `${arity} fields`
      throw new PolicyFileError(file, i + 1, `"${ptype}" takes ${arity} values (${expected}), got ${values.length}`)
    }
    if (values.some((v) => v === '')) {
      throw new PolicyFileError(file, i + 1, 'empty value')
    }
    if (policyTokens) {
      const priority = policyTokens.indexOf('priority')
      if (priority >= 0 && !/^-?\d+$/.test(values[priority]!)) {
        throw new PolicyFileError(file, i + 1, `priority must be an integer, got "${values[priority]}"`)
      }
      const eft = policyTokens.indexOf('eft')
      if (eft >= 0 && values[eft] !== 'allow' && values[eft] !== 'deny') {
        throw new PolicyFileError(file, i + 1, `effect must be "allow" or "deny", got "${values[eft]}"`)
      }
      for (const call of patterns) {
        const index = policyTokens.findIndex((token) => call.pattern === `${ptype}_${token}`)
        const problem = index < 0 ? undefined : patternProblem(call.fn, values[index]!)
        if (problem) throw new PolicyFileError(file, i + 1, problem)
      }
      policyTokens.forEach((token, index) => {
        if (model.matcher.includes(`eval(${ptype}_${token})`)) {
          const what = `condition "${values[index]}"`
          checkExpression(values[index]!, { file, line: i + 1, what, names: conditionNames })
          checkSplice(model.matcher, `${ptype}_${token}`, values[index]!, { file, line: i + 1, what })
        }
      })
    }
    out.push({ ptype: intern(ptype), values: values.map(intern), line: i + 1 })
  }
  rejectRoleCycles(out, model, file)
  return out
}

/**
 * The lines in the order node-casbin's loadPolicy leaves them, which decides the priority effects: each policy
 * type's lines sorted by their `priority` field, then, for `subjectPriority(p.eft) || deny`, by the depth of their
 * subject in the role hierarchy. The second sort is Casbin's own code run on a scratch model, so that its
 * particular rules (how it reads role lines and domains, and subjects it does not rank) are reproduced exactly.
 * Role lines keep file order.
 */
export function casbinOrder(model: ModelFile, lines: readonly PolicyLine[]): PolicyLine[] {
  const scratch = newModelFromString(model.source)
  const origin = new Map<string[], PolicyLine>()
  for (const line of lines) {
    const row = [...line.values]
    origin.set(row, line)
    scratch.model.get(line.ptype.charAt(0))!.get(line.ptype)!.policy.push(row)
  }
  for (const [ptype, assertion] of scratch.model.get('p') ?? []) {
    const priority = assertion.tokens.indexOf(`${ptype}_priority`)
    if (priority >= 0) assertion.policy.sort((a, b) => parseInt(a[priority]!, 10) - parseInt(b[priority]!, 10))
  }
  scratch.sortPoliciesBySubjectHierarchy()
  const out: PolicyLine[] = []
  for (const sec of ['p', 'g']) {
    for (const assertion of scratch.model.get(sec)?.values() ?? []) for (const row of assertion.policy) out.push(origin.get(row)!)
  }
  return out
}

/**
 * Casbin silently caps hierarchy depth; a cycle is always an operator mistake, so it stops the load.
 * Links in the wildcard domain apply in every tenant, so each tenant is checked together with them.
 */
function rejectRoleCycles(lines: PolicyLine[], model: ModelFile, file: string): void {
  for (const ptype of model.roleArity.keys()) {
    const byDomain = new Map<string, PolicyLine[]>()
    for (const l of lines) {
      if (l.ptype !== ptype) continue
      const domain = l.values[2] ?? ANY_DOMAIN
      const list = byDomain.get(domain) ?? []
      list.push(l)
      byDomain.set(domain, list)
    }
    const shared = byDomain.get(ANY_DOMAIN) ?? []
    for (const [domain, own] of byDomain) {
      findCycle(domain === ANY_DOMAIN ? own : [...shared, ...own], file)
    }
  }
}

function findCycle(links: PolicyLine[], file: string): void {
  const edges = new Map<string, { to: string; line: number }[]>()
  for (const l of links) {
    const list = edges.get(l.values[0]!) ?? []
    list.push({ to: l.values[1]!, line: l.line })
    edges.set(l.values[0]!, list)
  }
  const state = new Map<string, 1 | 2>()
  const walk = (node: string): void => {
    state.set(node, 1)
    for (const edge of edges.get(node) ?? []) {
      const seen = state.get(edge.to)
      if (seen === 1) throw new PolicyFileError(file, edge.line, `role cycle: "${edge.to}" inherits itself`)
      if (seen === undefined) walk(edge.to)
    }
    state.set(node, 2)
  }
  for (const node of edges.keys()) if (!state.has(node)) walk(node)
}
