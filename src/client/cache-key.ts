import { createHash } from 'node:crypto'

/**
 * JSON with object keys sorted at every depth, so that two inputs that mean the same thing give the
 * same text whatever order their properties were written in. Arrays keep their order (it can carry
 * meaning, e.g. `amr`); `undefined` members are dropped, as JSON.stringify drops them.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v
    // fromEntries defines own properties, so a `__proto__` member stays data instead of becoming a prototype.
    return Object.fromEntries(Object.keys(v).sort().map((key) => [key, (v as Record<string, unknown>)[key]]))
  })
}

/** The cache key of a decision input: a digest, so that a user's token in the input is never kept as a key. */
export function inputKey(input: unknown): string {
  return createHash('sha256').update(canonicalJson(input)).digest('base64url')
}
