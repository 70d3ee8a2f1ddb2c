import { describeFilter, keyMatchPrefix, matchedText, matchesFilter, type ComparisonOp, type FilterField, type FilterResource, type FilterScalar, type PlanFilter } from '../engine/plan/filter.js'
import { regexLiteral } from '../engine/plan/regex.js'

/*
 * A plan's filter in the forms services query with: a parameterised SQL WHERE clause and a Prisma `where` object.
 * Values only ever travel as parameters; column and field names come from the caller's map and are checked to be
 * plain identifiers. Both forms are exact when each mapped column holds the JSON type the policy compares it with
 * (text with strings, numbers with numbers, booleans with booleans; text for keyMatch and `matches`) and a missing
 * attribute is NULL.
 *
 * A `matches` node (keyMatch2-5, regexMatch, globMatch) is a regular expression the planner has written to mean the
 * same in JavaScript and PostgreSQL: PostgreSQL runs it with `~` (in a UTF-8 database); the `?` dialect writes
 * `REGEXP`, which SQLite only has once the caller registers a function for it, and which is exact only when that
 * function is JavaScript's RegExp, as `planRegexp` is. Prisma has no regular expressions: a `matches` node that is
 * not plain text makes toPrismaWhere throw PlanFilterError.
 */

/** Where each filter field lives: a column (optionally table-qualified) or a Prisma field. */
export type FieldMap = Partial<Record<FilterField, string>>

export interface SqlOptions {
  /**
   * `postgres` numbers parameters $1, $2, ... and casts each to its type; `sqlite` (and most others) use `?`, pass
   * booleans as 1 and 0 (as SQLite stores them), and write a `matches` node as `REGEXP`, which needs `planRegexp`
   * registered (SQLite has no regexp function of its own).
   */
  dialect?: 'postgres' | 'sqlite'
  /** The first parameter's number (postgres), when the clause joins a query that already has parameters. */
  firstParameter?: number
}

export interface SqlWhere {
  sql: string
  params: FilterScalar[]
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/

export class PlanFilterError extends Error {
  override name = 'PlanFilterError'
}

function mapped(fields: FieldMap, field: FilterField): string {
  const name = fields[field]
  if (name === undefined) throw new PlanFilterError(`the filter reads ${field}, which the field map does not name`)
  if (!IDENTIFIER.test(name)) throw new PlanFilterError(`"${name}" (for ${field}) is not a plain identifier`)
  return name
}

const SQL_OPERATORS: Record<ComparisonOp, string> = { eq: '=', ne: '<>', lt: '<', le: '<=', gt: '>', ge: '>=' }
const PG_TYPES = { string: 'text', number: 'numeric', boolean: 'boolean' } as const

/**
 * The filter as a SQL boolean expression and its parameters. Every part is TRUE or FALSE, never NULL (a missing
 * attribute fails every comparison but `ne`, as in the policy), so NOT and OR mean what the filter means.
 */
export function toSqlWhere(filter: PlanFilter, fields: FieldMap, options: SqlOptions = {}): SqlWhere {
  const params: FilterScalar[] = []
  const postgres = options.dialect === 'postgres'
  const first = options.firstParameter ?? 1
  const param = (value: FilterScalar): string => {
    if (postgres) {
      params.push(value)
      return `$${first + params.length - 1}::${PG_TYPES[typeof value as keyof typeof PG_TYPES]}`
    }
    // SQLite keeps booleans as 1 and 0, and its drivers refuse to bind a JavaScript boolean.
    params.push(typeof value === 'boolean' ? (value ? 1 : 0) : value)
    return '?'
  }
  const visit = (f: PlanFilter): string => {
    switch (f.op) {
      case 'and':
      case 'or':
        return `(${f.args.map(visit).join(f.op === 'and' ? ' AND ' : ' OR ')})`
      case 'not':
        return `(NOT ${visit(f.arg)})`
      case 'exists':
        return `(${mapped(fields, f.field)} IS NOT NULL)`
      case 'in': {
        const column = mapped(fields, f.field)
        if (f.values.length === 0) return '(1 = 0)'
        return `(${column} IS NOT NULL AND ${column} IN (${f.values.map(param).join(', ')}))`
      }
      case 'keyMatch': {
        // Casbin reads a missing value as "", and compares the characters before the pattern's first "*".
        const column = `COALESCE(${mapped(fields, f.field)}, '')`
        const { prefix, wildcard } = keyMatchPrefix(f.pattern)
        if (!wildcard) return `(${column} = ${param(prefix)})`
        return `(SUBSTR(${column}, 1, ${[...prefix].length}) = ${param(prefix)})`
      }
      case 'matches': {
        // Casbin reads a missing value as ""; keyMatch5 tests the value before its first "?".
        const column = `COALESCE(${mapped(fields, f.field)}, '')`
        const text = f.function !== 'keyMatch5' ? column : postgres ? `SPLIT_PART(${column}, '?', 1)` : `SUBSTR(${column}, 1, INSTR(${column} || '?', '?') - 1)`
        return `(${text} ${postgres ? '~' : 'REGEXP'} ${param(f.regex)})`
      }
      case 'ne': {
        const column = mapped(fields, f.field)
        return `(${column} IS NULL OR ${column} <> ${param(f.value)})`
      }
      default: {
        const column = mapped(fields, f.field)
        return `(${column} IS NOT NULL AND ${column} ${SQL_OPERATORS[f.op]} ${param(f.value)})`
      }
    }
  }
  return { sql: visit(filter), params }
}

/**
 * SQLite's `regexp(pattern, value)` as the `?` dialect's REGEXP needs it, JavaScript's own RegExp without flags, e.g.
 * with better-sqlite3: `db.function('regexp', { deterministic: true }, planRegexp)`.
 */
export function planRegexp(pattern: unknown, value: unknown): 0 | 1 {
  if (typeof pattern !== 'string' || value === null || value === undefined) return 0
  let regex = regexps.get(pattern)
  if (!regex) {
    regex = new RegExp(pattern)
    // A plan holds a handful of patterns; the bound only keeps a long-lived connection from growing.
    if (regexps.size >= 1000) regexps.clear()
    regexps.set(pattern, regex)
  }
  return regex.test(String(value)) ? 1 : 0
}

const regexps = new Map<string, RegExp>()

/** A Prisma `where` object. */
export type PrismaWhere = Record<string, unknown>

function prismaField(fields: FieldMap, field: FilterField): string {
  const name = mapped(fields, field)
  if (name.includes('.')) throw new PlanFilterError(`"${name}" (for ${field}) is not a Prisma field name`)
  return name
}

/** The filter as a Prisma `where` object (null stands for a missing attribute, as in a nullable column). */
export function toPrismaWhere(filter: PlanFilter, fields: FieldMap): PrismaWhere {
  switch (filter.op) {
    case 'and':
      return { AND: filter.args.map((f) => toPrismaWhere(f, fields)) }
    case 'or':
      return { OR: filter.args.map((f) => toPrismaWhere(f, fields)) }
    case 'not':
      return { NOT: toPrismaWhere(filter.arg, fields) }
    case 'exists':
      return { [prismaField(fields, filter.field)]: { not: null } }
    case 'in':
      return { [prismaField(fields, filter.field)]: { in: [...filter.values] } }
    case 'keyMatch': {
      const name = prismaField(fields, filter.field)
      const { prefix, wildcard } = keyMatchPrefix(filter.pattern)
      const test = wildcard ? { startsWith: prefix } : { equals: prefix }
      // A missing value reads as "", which only an empty prefix (or pattern) matches.
      return prefix === '' ? { OR: [{ [name]: null }, { [name]: test }] } : { [name]: test }
    }
    case 'matches':
      return prismaMatches(filter, prismaField(fields, filter.field))
    case 'ne': {
      const name = prismaField(fields, filter.field)
      // Prisma's `not` leaves NULL rows out; the policy's != keeps a missing attribute.
      return { OR: [{ [name]: null }, { [name]: { not: filter.value } }] }
    }
    case 'eq':
      return { [prismaField(fields, filter.field)]: { equals: filter.value } }
    default:
      return { [prismaField(fields, filter.field)]: { [filter.op === 'le' ? 'lte' : filter.op === 'ge' ? 'gte' : filter.op]: filter.value } }
  }
}

/** A `matches` node Prisma can say: plain text between optional anchors, as equals, startsWith, endsWith or contains. */
function prismaMatches(filter: Extract<PlanFilter, { op: 'matches' }>, name: string): PrismaWhere {
  const literal = regexLiteral(filter.regex)
  // keyMatch5 cuts the value at its first "?": exact as equals-or-query-string only for anchored text without "?".
  const cut = filter.function === 'keyMatch5'
  if (!literal || (cut && (!literal.start || !literal.end || literal.text.includes('?')))) {
    throw new PlanFilterError(`Prisma has no regular-expression filter, so ${describeFilter(filter)} (the regex ${JSON.stringify(filter.regex)}) cannot be a Prisma where; use planToSql or planPredicate`)
  }
  const { text, start, end } = literal
  const tests: PrismaWhere[] = [{ [name]: start && end ? { equals: text } : start ? { startsWith: text } : end ? { endsWith: text } : { contains: text } }]
  if (cut) tests.push({ [name]: { startsWith: `${text}?` } })
  // A missing value reads as "", which only some patterns match.
  if (new RegExp(filter.regex).test(matchedText('', filter.function))) tests.push({ [name]: null })
  return tests.length === 1 ? tests[0]! : { OR: tests }
}

/** A plan as the client helpers read it (the PDP's answer, or the client's own always_denied when it got none). */
export interface PlanLike {
  plan: 'always_allowed' | 'always_denied' | 'conditional' | 'unsupported'
  filter?: PlanFilter
  stepUp?: unknown
}

/**
 * The filter a plan asks for, or a constant: only an allow with no step-up lets anything through. A step-up is
 * not an allow (ask the user to step up first, then plan again), and an unsupported plan lets nothing through.
 */
function effectiveFilter(plan: PlanLike): PlanFilter | boolean {
  if (plan.stepUp !== undefined) return false
  if (plan.plan === 'always_allowed') return true
  if (plan.plan === 'conditional' && plan.filter) return plan.filter
  return false
}

/** The plan as an in-memory test of one resource. */
export function planPredicate(plan: PlanLike): (resource: FilterResource) => boolean {
  const filter = effectiveFilter(plan)
  return typeof filter === 'boolean' ? () => filter : (resource) => matchesFilter(filter, resource)
}

/** The plan as a SQL WHERE clause (see toSqlWhere); a constant plan gives (1 = 1) or (1 = 0). */
export function planToSql(plan: PlanLike, fields: FieldMap, options: SqlOptions = {}): SqlWhere {
  const filter = effectiveFilter(plan)
  return typeof filter === 'boolean' ? { sql: filter ? '(1 = 1)' : '(1 = 0)', params: [] } : toSqlWhere(filter, fields, options)
}

/** The plan as a Prisma `where` object; `{ AND: [] }` matches every row and `{ OR: [] }` none. */
export function planToPrisma(plan: PlanLike, fields: FieldMap): PrismaWhere {
  const filter = effectiveFilter(plan)
  return typeof filter === 'boolean' ? (filter ? { AND: [] } : { OR: [] }) : toPrismaWhere(filter, fields)
}
