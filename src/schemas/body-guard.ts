import { isWellFormed, wellFormed } from '../engine/identifiers.js'

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

/** A JSON pointer; unpaired surrogates in keys are shown as U+FFFD so that the error itself is well-formed text. */
const pointer = (path: readonly (string | number)[]) =>
  '/' + path.map((p) => wellFormed(String(p)).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')

const NOT_WELL_FORMED = 'is not well-formed Unicode (an unpaired surrogate)'

/** A value still to visit; the path to it is rebuilt from parent links only when it is reported. */
interface Visit {
  value: unknown
  key: string | number | undefined
  parent: Visit | undefined
  depth: number
}

function pathOf(visit: Visit, last?: string): (string | number)[] {
  const path: (string | number)[] = last === undefined ? [] : [last]
  for (let v: Visit | undefined = visit; v?.key !== undefined; v = v.parent) path.unshift(v.key)
  return path
}

/**
 * Walks a parsed JSON body iteratively (no recursion, so hostile nesting cannot exhaust the stack)
 * and reports the first forbidden key, over-deep value, over-large body or string with an unpaired
 * surrogate (JSON's \ud800 escapes allow them; no store key, header or UTF-8 log line can hold one).
 */
export function checkBody(body: unknown, limits: BodyLimits = DEFAULT_BODY_LIMITS): BodyProblem | undefined {
  const stack: Visit[] = [{ value: body, key: undefined, parent: undefined, depth: 0 }]
  let nodes = 0
  while (stack.length > 0) {
    const visit = stack.pop()!
    const { value, depth } = visit
    if (++nodes > limits.maxNodes) return { field: '/', message: `body has more than ${limits.maxNodes} values` }
    if (typeof value === 'string' && !isWellFormed(value)) return { field: pointer(pathOf(visit)), message: NOT_WELL_FORMED }
    if (value === null || typeof value !== 'object') continue
    if (depth >= limits.maxDepth) return { field: pointer(pathOf(visit)), message: `nested deeper than ${limits.maxDepth} levels` }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], key: i, parent: visit, depth: depth + 1 })
      continue
    }
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) return { field: pointer(pathOf(visit, key)), message: `key "${key}" is not allowed` }
      if (!isWellFormed(key)) return { field: pointer(pathOf(visit, key)), message: `key ${NOT_WELL_FORMED}` }
      stack.push({ value: (value as Record<string, unknown>)[key], key, parent: visit, depth: depth + 1 })
    }
  }
  return undefined
}
