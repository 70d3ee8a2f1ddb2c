import { LineCounter, isMap, isNode, isScalar, isSeq, parseDocument, type Document } from 'yaml'
import type { Static, TSchema } from 'typebox'
import Value from 'typebox/value'
import { PolicyFileError } from './policy-files.js'

/**
 * The one way a YAML file of the policy directory is read: parsed with line numbers, checked against a
 * TypeBox schema, and every fault reported as a PolicyFileError `file:line: path: problem`, worded the
 * same whichever file it is in. What the schema cannot say (order of thresholds, references between
 * keys) the caller checks on the document `readYamlDocument` returns, with `fail` for the same shape.
 */

export type YamlPath = readonly (string | number)[]

/** A YAML file's content, and where each value of it is. */
export interface YamlDocument<T = unknown> {
  file: string
  value: T
  /** 1-based line of the value at `path` (of its key, inside a mapping), or of its nearest existing parent. */
  lineOf(path: YamlPath): number | undefined
  /** Throws a PolicyFileError at the line of `path`: `file:line: path: problem`. */
  fail(path: YamlPath, problem: string): never
}

/** Parses `text` and checks it against `schema`; the value as the file says it (defaults are the caller's). */
export function readYaml<T extends TSchema>(schema: T, text: string, file: string): Static<T> {
  return readYamlDocument(schema, text, file).value
}

/** As readYaml, with the document's lines for the checks that follow the schema. */
export function readYamlDocument<T extends TSchema>(schema: T, text: string, file: string): YamlDocument<Static<T>> {
  const doc = parseYaml(text, file)
  // An empty file, or a key written with nothing after it, means "nothing here": the defaults apply.
  const value = withoutEmptyKeys(schema, doc.value === null && typeOf(schema) === 'object' ? {} : doc.value)
  if (!Value.Check(schema, value)) {
    const found: Fault[] = []
    explain(schema, value, [], found)
    const fault = found.length > 0 ? firstInFile(doc, found) : fromTypeBox(schema, value)
    doc.fail(fault.path, fault.problem)
  }
  return { ...doc, value: value as Static<T> }
}

/** Parses YAML without a schema: valid YAML with no key repeated in a mapping, with its lines. */
export function parseYaml(text: string, file: string): YamlDocument {
  const lineCounter = new LineCounter()
  // Repeated keys are found below, where the path and the key can be named; yaml's own check names neither.
  const doc: Document = parseDocument(text, { lineCounter, uniqueKeys: false })
  const first = doc.errors[0]
  if (first) throw new PolicyFileError(file, first.linePos?.[0]?.line, `not valid YAML: ${first.message.split('\n')[0]}`)
  const at = (path: YamlPath) => (path.length > 0 ? `${path.join('.')}: ` : '')
  const repeated = (node: unknown, path: YamlPath): void => {
    if (isMap(node)) {
      const seen = new Set<unknown>()
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key
        if (seen.has(key)) {
          const line = isNode(pair.key) && pair.key.range ? lineCounter.linePos(pair.key.range[0]).line : undefined
          throw new PolicyFileError(file, line, `${at(path)}duplicate key "${String(key)}"`)
        }
        seen.add(key)
        repeated(pair.value, [...path, String(key)])
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => repeated(item, [...path, i]))
    }
  }
  repeated(doc.contents, [])

  const lineOf = (path: YamlPath): number | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const prefix = path.slice(0, depth)
      const node = prefix.length === 0 ? doc.contents : doc.getIn(prefix, true)
      if (isNode(node) && node.range) {
        // For a key in a map, the key's own line reads better than where its value starts.
        if (depth > 0) {
          const parent = depth === 1 ? doc.contents : doc.getIn(prefix.slice(0, -1), true)
          if (isMap(parent)) {
            const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(prefix[prefix.length - 1]))
            const key = pair?.key
            if (isNode(key) && key.range) return lineCounter.linePos(key.range[0]).line
          }
        }
        return lineCounter.linePos(node.range[0]).line
      }
      // A key whose value is empty has no value node; its key still has a line.
      if (depth > 0) {
        const parent = depth === 1 ? doc.contents : doc.getIn(prefix.slice(0, -1), true)
        if (isMap(parent)) {
          const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(prefix[prefix.length - 1]))
          if (isNode(pair?.key) && pair.key.range) return lineCounter.linePos(pair.key.range[0]).line
        }
      }
    }
    return undefined
  }
  return {
    file,
    value: doc.toJS() as unknown,
    lineOf,
    fail(path, problem) {
      throw new PolicyFileError(file, lineOf(path), `${at(path)}${problem}`)
    },
  }
}

/** The JSON Schema keywords the policy schemas use, as the reader sees them. */
interface Schema {
  type?: string
  anyOf?: Schema[]
  enum?: unknown[]
  const?: unknown
  properties?: Record<string, Schema>
  required?: string[]
  additionalProperties?: boolean | Schema
  patternProperties?: Record<string, Schema>
  propertyNames?: Schema
  minProperties?: number
  maxProperties?: number
  items?: Schema
  minItems?: number
  maxItems?: number
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minLength?: number
  maxLength?: number
  pattern?: string
  /** What the value must be ("must be ..."), when it does not match `pattern` (also shown by editors). */
  patternErrorMessage?: string
  /** What the value must be ("must be ..."), when it fits no branch of `anyOf` or is not in `enum` (also shown by editors). */
  errorMessage?: string
}

interface Fault {
  path: YamlPath
  problem: string
  /** A required key is absent from the mapping at `path`. */
  missing?: boolean
}

const isMapping = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

function typeOf(schema: Schema): string | undefined {
  if (schema.type) return schema.type
  if (schema.enum?.every((v) => typeof v === 'string') || typeof schema.const === 'string') return 'string'
  return undefined
}

/** Drops keys written without a value where the schema lets the key be left out, so they take the default. */
function withoutEmptyKeys(schema: Schema, value: unknown): unknown {
  if (schema.anyOf) {
    const mappings = schema.anyOf.filter((s) => typeOf(s) === 'object')
    return isMapping(value) && mappings.length === 1 ? withoutEmptyKeys(mappings[0]!, value) : value
  }
  if (isMapping(value) && typeOf(schema) === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const property = schema.properties?.[key]
      if (property) {
        if (item === null && !schema.required?.includes(key) && !Value.Check(property as TSchema, null)) delete value[key]
        else withoutEmptyKeys(property, item)
      } else {
        const pattern = Object.values(schema.patternProperties ?? {})[0]
        if (pattern) withoutEmptyKeys(pattern, item)
      }
    }
  } else if (Array.isArray(value) && schema.items) {
    for (const item of value) withoutEmptyKeys(schema.items, item)
  }
  return value
}

const TYPE_WORDS: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  null: 'empty',
}

function got(value: unknown): string {
  if (value === null || value === undefined) return 'nothing'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

function fitsType(type: string, value: unknown): boolean {
  switch (type) {
    case 'object':
      return isMapping(value)
    case 'array':
      return Array.isArray(value)
    case 'number':
      return typeof value === 'number' && Number.isFinite(value)
    case 'integer':
      return Number.isInteger(value)
    case 'null':
      return value === null
    default:
      return typeof value === type
  }
}

function describe(schema: Schema): string {
  if (schema.enum) return `one of ${schema.enum.join(', ')}`
  if (schema.const !== undefined) return JSON.stringify(schema.const)
  return TYPE_WORDS[schema.type ?? ''] ?? 'something else'
}

function range(schema: Schema): string | undefined {
  const { minimum: min, maximum: max, exclusiveMinimum: above, exclusiveMaximum: below } = schema
  if (min !== undefined && max !== undefined) return `between ${min} and ${max}`
  if (above !== undefined && max !== undefined) return `more than ${above} and at most ${max}`
  if (min !== undefined) return `at least ${min}`
  if (above !== undefined) return `more than ${above}`
  if (max !== undefined) return `at most ${max}`
  if (below !== undefined) return `less than ${below}`
  return undefined
}

/** Every fault of `value` against `schema`, each at the path of the value at fault. */
function explain(schema: Schema, value: unknown, path: YamlPath, out: Fault[]): void {
  const fault = (problem: string, at: YamlPath = path): void => {
    out.push({ path: at, problem })
  }
  if (schema.anyOf) {
    const branch = branchFor(schema.anyOf, value, path, out)
    if (branch === undefined) return
    if (branch === null) fault(`${schema.errorMessage ?? `must be ${[...new Set(schema.anyOf.map(describe))].join(' or ')}`} (got ${got(value)})`)
    else explain(branch, value, path, out)
    return
  }
  if (schema.enum && !schema.enum.includes(value as never)) return fault(`${schema.errorMessage ?? `must be one of ${schema.enum.join(', ')}`} (got ${got(value)})`)
  if (schema.const !== undefined && schema.const !== value) return fault(`must be ${JSON.stringify(schema.const)} (got ${got(value)})`)
  const type = typeOf(schema)
  if (type && !fitsType(type, value)) return fault(`must be ${TYPE_WORDS[type] ?? type} (got ${got(value)})`)

  if (typeof value === 'number') {
    const outside =
      (schema.minimum !== undefined && value < schema.minimum) ||
      (schema.maximum !== undefined && value > schema.maximum) ||
      (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) ||
      (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum)
    if (outside) fault(`must be ${range(schema)} (got ${value})`)
  } else if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      fault(schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters long`)
    } else if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      fault(`must be at most ${schema.maxLength} characters long`)
    } else if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      fault(`${schema.patternErrorMessage ?? `must match ${schema.pattern}`} (got ${got(value)})`)
    }
  } else if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      fault(schema.minItems === 1 ? 'must not be an empty list' : `must have at least ${schema.minItems} entries`)
    } else if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      fault(`must have at most ${schema.maxItems} entries`)
    }
    if (schema.items) value.forEach((item, i) => explain(schema.items!, item, [...path, i], out))
  } else if (isMapping(value)) {
    const keys = Object.keys(value)
    const known = Object.keys(schema.properties ?? {})
    const pattern = Object.values(schema.patternProperties ?? {})[0]
    for (const key of keys) {
      const property = schema.properties?.[key]
      if (property) explain(property, value[key], [...path, key], out)
      else if (pattern) explain(pattern, value[key], [...path, key], out)
      else if (schema.additionalProperties === false) fault(`unknown key "${key}" (${known.length > 0 ? `expected one of ${known.join(', ')}` : 'none is allowed here'})`, [...path, key])
      const names = schema.propertyNames
      if (names?.pattern !== undefined && !new RegExp(names.pattern, 'u').test(key)) {
        fault(`${names.patternErrorMessage ?? `must match ${names.pattern}`} (got ${got(key)})`, [...path, key])
      }
    }
    for (const key of schema.required ?? []) if (!Object.hasOwn(value, key)) out.push({ path, problem: `missing required key "${key}"`, missing: true })
    if (schema.maxProperties === 1 && schema.minProperties === 1 && keys.length !== 1) {
      fault(`must have exactly one of ${known.join(', ')}`)
    } else if (schema.minProperties !== undefined && keys.length < schema.minProperties) {
      fault(`must have at least ${schema.minProperties} ${schema.minProperties === 1 ? 'key' : 'keys'}`)
    } else if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) {
      fault(`must have at most ${schema.maxProperties} ${schema.maxProperties === 1 ? 'key' : 'keys'}`)
    }
  }
}

/**
 * The branch of a union the value was meant for: the only one of its type, or among mappings the one
 * whose constant key (such as `kind`) the value names. Null when none fits; undefined when the fault is
 * the constant key itself, already reported.
 */
function branchFor(branches: Schema[], value: unknown, path: YamlPath, out: Fault[]): Schema | null | undefined {
  const sameType = branches.filter((b) => {
    const type = typeOf(b)
    return type === undefined || fitsType(type, value) || (type === 'number' && fitsType('integer', value))
  })
  if (sameType.length <= 1) return sameType[0] ?? null
  if (!isMapping(value)) return sameType[0]!
  const tags = Object.keys(sameType[0]!.properties ?? {}).filter((key) => sameType.every((b) => b.properties?.[key]?.const !== undefined))
  for (const tag of tags) {
    const chosen = sameType.find((b) => b.properties![tag]!.const === value[tag])
    if (chosen) return chosen
    const allowed = sameType.map((b) => String(b.properties![tag]!.const))
    if (value[tag] === undefined) out.push({ path, problem: `missing required key "${tag}"`, missing: true })
    else out.push({ path: [...path, tag], problem: `must be one of ${allowed.join(', ')} (got ${got(value[tag])})` })
    return undefined
  }
  return sameType[0]!
}

/**
 * The fault nearest the top of the file: what an operator reading down meets first. A missing key yields
 * to another fault in the same mapping, which is often the same key misspelt.
 */
function firstInFile(doc: YamlDocument, all: Fault[]): Fault {
  const within = (outer: Fault, inner: Fault) => inner !== outer && outer.path.every((part, i) => inner.path[i] === part)
  const faults = all.filter((f) => !(f.missing && all.some((other) => !other.missing && within(f, other))))
  let best = faults[0]!
  let bestLine = doc.lineOf(best.path) ?? Infinity
  for (const fault of faults.slice(1)) {
    const line = doc.lineOf(fault.path) ?? Infinity
    if (line < bestLine) {
      best = fault
      bestLine = line
    }
  }
  return best
}

/** A fault of a keyword the reader does not word itself: TypeBox's own message, at its path. */
function fromTypeBox(schema: TSchema, value: unknown): Fault {
  const [error] = Value.Errors(schema, value)
  const path = (error?.instancePath ?? '')
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part))
  return { path, problem: error?.message ?? 'does not match its schema' }
}
