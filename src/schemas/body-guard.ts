/** Bounds on the shape of request bodies, checked before schema validation. */
export interface BodyLimits {
  /** Deepest nesting of objects and arrays, counting the body itself as 1. */
  maxDepth: number
  /** Most values (objects, arrays and scalars) in one body. */
  maxNodes: number
}

export const DEFAULT_BODY_LIMITS: BodyLimits = { maxDepth: 12, maxNodes: 10_000 }

/** Keys that could reach an object's prototype if some later code merged attributes into an object. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

export interface BodyProblem {
  field: string
  message: string
}

const pointer = (path: readonly (string | number)[]) =>
  '/' + path.map((p) => String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')

/**
 * Walks a parsed JSON body iteratively (no recursion, so hostile nesting cannot exhaust the stack)
 * and reports the first forbidden key, over-deep value or over-large body.
 */
export function checkBody(body: unknown, limits: BodyLimits = DEFAULT_BODY_LIMITS): BodyProblem | undefined {
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: body, path: [] }]
  let nodes = 0
  while (stack.length > 0) {
    const { value, path } = stack.pop()!
    if (++nodes > limits.maxNodes) return { field: '/', message: `body has more than ${limits.maxNodes} values` }
    if (value === null || typeof value !== 'object') continue
    if (path.length >= limits.maxDepth) return { field: pointer(path), message: `nested deeper than ${limits.maxDepth} levels` }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: [...path, i] })
      continue
    }
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) return { field: pointer([...path, key]), message: `key "${key}" is not allowed` }
      stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key] })
    }
  }
  return undefined
}
