import { portableRegex } from './regex.js'

/**
 * The filter a plan answers with: a small JSON expression tree over one resource's `resource.id` and
 * `resource.attributes.<name>`. Comparisons mean what they mean in the policy language (Casbin's matcher, that is
 * JavaScript): `eq`/`ne` are `==`/`!=`, `lt`..`ge` are `<`..`>=`, a missing attribute is `undefined`. `in` is
 * membership in a list (strict equality, as Casbin's `in`), `exists` is "present and not null", and `keyMatch` is
 * Casbin's keyMatch on the value as a string (a prefix test up to the pattern's first `*`). `matches` is one of
 * Casbin's other pattern functions (keyMatch2-5, regexMatch, globMatch) with the policy's pattern, carried out as the
 * regular expression `regex` (see regex.ts: it means the same in JavaScript and in PostgreSQL) searched in the value
 * as a string (for keyMatch5, the value up to its first "?", as Casbin strips a query string).
 */

export type FilterScalar = string | number | boolean

export type FilterField = 'resource.id' | `resource.attributes.${string}`

export type ComparisonOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge'

export type PlanFilter =
  | { op: 'and' | 'or'; args: PlanFilter[] }
  | { op: 'not'; arg: PlanFilter }
  | { op: ComparisonOp; field: FilterField; value: FilterScalar }
  | { op: 'in'; field: FilterField; values: FilterScalar[] }
  | { op: 'exists'; field: FilterField }
  | { op: 'keyMatch'; field: FilterField; pattern: string }
  | { op: 'matches'; field: FilterField; function: MatchFunction; pattern: string; regex: string }

/** Casbin's pattern functions a `matches` node stands for. */
export const MATCH_FUNCTIONS = ['keyMatch2', 'keyMatch3', 'keyMatch4', 'keyMatch5', 'regexMatch', 'globMatch'] as const
export type MatchFunction = (typeof MATCH_FUNCTIONS)[number]

export const isMatchFunction = (name: unknown): name is MatchFunction => (MATCH_FUNCTIONS as readonly unknown[]).includes(name)

/** A filter while it is being built: constants fold away, so a finished plan's filter never holds one. */
export type Condition = PlanFilter | boolean

/** Whether one side is the other's negation, built from the very same node (how the planner combines regions). */
const complementary = (a: PlanFilter, b: PlanFilter): boolean => (a.op === 'not' && a.arg === b) || (b.op === 'not' && b.arg === a)

export function and(a: Condition, b: Condition): Condition {
  if (a === false || b === false) return false
  if (a === true) return b
  if (b === true) return a
  if (complementary(a, b)) return false
  const args = [...(a.op === 'and' ? a.args : [a]), ...(b.op === 'and' ? b.args : [b])]
  return { op: 'and', args }
}

export function or(a: Condition, b: Condition): Condition {
  if (a === true || b === true) return true
  if (a === false) return b
  if (b === false) return a
  if (complementary(a, b)) return true
  const args = [...(a.op === 'or' ? a.args : [a]), ...(b.op === 'or' ? b.args : [b])]
  return { op: 'or', args }
}

export function not(a: Condition): Condition {
  if (typeof a === 'boolean') return !a
  return a.op === 'not' ? a.arg : { op: 'not', arg: a }
}

/** A resource as the filter reads it (the PDP reads a missing id as ""). */
export interface FilterResource {
  id?: string
  attributes?: Record<string, unknown>
}

const ATTRIBUTE_PREFIX = 'resource.attributes.'

/** The value a field names on one resource; attributes are own properties only. */
export function fieldValue(resource: FilterResource, field: FilterField): unknown {
  if (field === 'resource.id') return resource.id ?? ''
  const name = field.slice(ATTRIBUTE_PREFIX.length)
  const attributes = resource.attributes ?? {}
  return Object.hasOwn(attributes, name) ? attributes[name] : undefined
}

/** The literal prefix Casbin's keyMatch compares: the pattern up to its first `*`, or all of it. */
export function keyMatchPrefix(pattern: string): { prefix: string; wildcard: boolean } {
  const star = pattern.indexOf('*')
  return star < 0 ? { prefix: pattern, wildcard: false } : { prefix: pattern.slice(0, star), wildcard: true }
}

function keyMatch(value: unknown, pattern: string): boolean {
  // Casbin's keyMatchFunc reads its argument as (value || '').toString().
  const key = String(value || '')
  const { prefix, wildcard } = keyMatchPrefix(pattern)
  return wildcard ? key.startsWith(prefix) : key === prefix
}

/** The string a `matches` node searches: the value as Casbin's functions read it, for keyMatch5 without its query string. */
export function matchedText(value: unknown, fn: MatchFunction): string {
  const text = String(value || '')
  const query = fn === 'keyMatch5' ? text.indexOf('?') : -1
  return query < 0 ? text : text.slice(0, query)
}

// One compiled expression per node, for as long as the filter lives.
const compiled = new WeakMap<object, RegExp>()

function matches(filter: Extract<PlanFilter, { op: 'matches' }>, value: unknown): boolean {
  let regex = compiled.get(filter)
  if (!regex) compiled.set(filter, (regex = new RegExp(filter.regex)))
  return regex.test(matchedText(value, filter.function))
}

// The policy language compares with JavaScript's loose operators, so the filter does too.
function compare(op: ComparisonOp, a: unknown, b: FilterScalar): boolean {
  const x = a as FilterScalar
  switch (op) {
    case 'eq':
      return x == b
    case 'ne':
      return x != b
    case 'lt':
      return x < b
    case 'le':
      return x <= b
    case 'gt':
      return x > b
    case 'ge':
      return x >= b
  }
}

/** Whether one resource passes the filter: the in-memory form of a plan. */
export function matchesFilter(filter: PlanFilter, resource: FilterResource): boolean {
  switch (filter.op) {
    case 'and':
      return filter.args.every((f) => matchesFilter(f, resource))
    case 'or':
      return filter.args.some((f) => matchesFilter(f, resource))
    case 'not':
      return !matchesFilter(filter.arg, resource)
    case 'in':
      return filter.values.includes(fieldValue(resource, filter.field) as FilterScalar)
    case 'exists':
      return fieldValue(resource, filter.field) != null
    case 'keyMatch':
      return keyMatch(fieldValue(resource, filter.field), filter.pattern)
    case 'matches':
      return matches(filter, fieldValue(resource, filter.field))
    default:
      return compare(filter.op, fieldValue(resource, filter.field), filter.value)
  }
}

const SYMBOLS: Record<ComparisonOp, string> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=' }

/** The filter as one line a person reads (the CLI prints it). */
export function describeFilter(filter: PlanFilter): string {
  switch (filter.op) {
    case 'and':
    case 'or':
      return `(${filter.args.map(describeFilter).join(filter.op === 'and' ? ' AND ' : ' OR ')})`
    case 'not':
      return `NOT ${describeFilter(filter.arg)}`
    case 'in':
      return `${filter.field} IN [${filter.values.map((v) => JSON.stringify(v)).join(', ')}]`
    case 'exists':
      return `${filter.field} EXISTS`
    case 'keyMatch':
      return `keyMatch(${filter.field}, ${JSON.stringify(filter.pattern)})`
    case 'matches':
      return `${filter.function}(${filter.field}, ${JSON.stringify(filter.pattern)})`
    default:
      return `${filter.field} ${SYMBOLS[filter.op]} ${JSON.stringify(filter.value)}`
  }
}

const OPS_WITH_VALUE: ReadonlySet<string> = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge'])
const FIELD = /^resource\.(id|attributes\.[A-Za-z_][\w-]*)$/

const isFilterScalar = (v: unknown): v is FilterScalar => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))

/** Whether a value received from elsewhere (an HTTP answer, a file) is a well-formed filter, checked to the leaves and depth-bounded. */
export function isPlanFilter(value: unknown, depth = 0): value is PlanFilter {
  if (depth > 64 || typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const node = value as Record<string, unknown>
  const op = node.op
  if (op === 'and' || op === 'or') return Array.isArray(node.args) && node.args.length > 0 && node.args.every((a) => isPlanFilter(a, depth + 1))
  if (op === 'not') return isPlanFilter(node.arg, depth + 1)
  if (typeof node.field !== 'string' || !FIELD.test(node.field)) return false
  if (typeof op === 'string' && OPS_WITH_VALUE.has(op)) return isFilterScalar(node.value)
  if (op === 'in') return Array.isArray(node.values) && node.values.every(isFilterScalar)
  if (op === 'exists') return true
  if (op === 'matches') return isMatchFunction(node.function) && typeof node.pattern === 'string' && typeof node.regex === 'string' && isPortable(node.regex)
  return op === 'keyMatch' && typeof node.pattern === 'string'
}

/** Whether a received regex is one the planner writes: portable, and in its canonical spelling. */
function isPortable(regex: string): boolean {
  const portable = portableRegex(regex)
  return 'regex' in portable && portable.regex === regex
}
