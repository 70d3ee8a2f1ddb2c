/**
 * Checks a value against the JSON Schema of POST /decide's body (served by the PDP from the TypeBox schema
 * the route validates with), covering the keywords that schema uses. Returns the first problem, as the
 * route's 400 would name it: a JSON pointer and what is wrong.
 */
export interface Schema {
  type?: string
  enum?: unknown[]
  properties?: Record<string, Schema>
  required?: string[]
  additionalProperties?: boolean | Schema
  patternProperties?: Record<string, Schema>
  items?: Schema
  minItems?: number
  maxItems?: number
  minLength?: number
  maxLength?: number
  pattern?: string
  minimum?: number
  maximum?: number
  maxProperties?: number
}

export interface Problem {
  pointer: string
  message: string
}

const typeOf = (value: unknown): string => (value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value)

function typeMatches(type: string, value: unknown): boolean {
  if (type === 'integer') return typeof value === 'number' && Number.isInteger(value)
  return typeOf(value) === type
}

const patterns = new Map<string, RegExp>()
const regex = (source: string) => {
  let re = patterns.get(source)
  if (!re) patterns.set(source, (re = new RegExp(source, 'u')))
  return re
}

export function check(schema: Schema, value: unknown, pointer = ''): Problem | undefined {
  const at = pointer || '/'
  if (schema.type !== undefined && !typeMatches(schema.type, value)) return { pointer: at, message: `must be ${schema.type === 'integer' ? 'an integer' : `a${/^[aeiou]/.test(schema.type) ? 'n' : ''} ${schema.type}`}` }
  if (schema.enum && !schema.enum.includes(value)) return { pointer: at, message: `must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}` }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) return { pointer: at, message: `must have at least ${schema.minLength} character(s)` }
    if (schema.maxLength !== undefined && value.length > schema.maxLength) return { pointer: at, message: `must have at most ${schema.maxLength} characters` }
    if (schema.pattern !== undefined && !regex(schema.pattern).test(value)) return { pointer: at, message: 'contains characters that are not allowed' }
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return { pointer: at, message: `must be ≥ ${schema.minimum}` }
    if (schema.maximum !== undefined && value > schema.maximum) return { pointer: at, message: `must be ≤ ${schema.maximum}` }
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) return { pointer: at, message: `must have at least ${schema.minItems} item(s)` }
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return { pointer: at, message: `must have at most ${schema.maxItems} items` }
    if (schema.items) {
      for (let i = 0; i < value.length; i++) {
        const problem = check(schema.items, value[i], `${pointer}/${i}`)
        if (problem) return problem
      }
    }
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>
    const keys = Object.keys(object)
    if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) return { pointer: at, message: `must have at most ${schema.maxProperties} properties` }
    for (const name of schema.required ?? []) if (!(name in object)) return { pointer: `${pointer}/${name}`, message: 'is required' }
    for (const key of keys) {
      const child = `${pointer}/${key}`
      const own = schema.properties?.[key]
      if (own) {
        const problem = check(own, object[key], child)
        if (problem) return problem
        continue
      }
      const byPattern = Object.entries(schema.patternProperties ?? {}).find(([p]) => regex(p).test(key))
      if (byPattern) {
        const problem = check(byPattern[1], object[key], child)
        if (problem) return problem
        continue
      }
      if (schema.additionalProperties === false) return { pointer: child, message: 'is not a known field' }
      if (typeof schema.additionalProperties === 'object') {
        const problem = check(schema.additionalProperties, object[key], child)
        if (problem) return problem
      }
    }
  }
  return undefined
}
