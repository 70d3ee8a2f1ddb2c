import type { Static, TSchema } from 'typebox'
import { Value } from 'typebox/value'
import { LineCounter, isMap, isNode, parseDocument } from 'yaml'
import { PolicyFileError } from './policy-files.js'

/** The first schema error of a value, worded for a person editing the file. */
function firstProblem(schema: TSchema, value: unknown): { path: string[]; problem: string } | undefined {
  // "schema is false" is how an unknown key shows up before its own additionalProperties error.
  const errors = [...Value.Errors(schema, value)].filter((e) => e.keyword !== 'boolean')
  const first = errors[0]
  if (!first) return undefined
  const path = first.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  const params = first.params as Record<string, unknown>
  if (first.keyword === 'additionalProperties') {
    const key = String((params.additionalProperties as unknown[])[0])
    return { path: [...path, key], problem: `unknown key "${key}"` }
  }
  if (first.keyword === 'enum') return { path, problem: `must be one of ${(params.allowedValues as unknown[]).join(', ')}` }
  return { path, problem: first.message }
}

/**
 * Reads a policy-directory YAML file against its TypeBox schema; the first fault is a PolicyFileError naming the
 * file, the line and the path of the value at fault.
 */
export function readYaml<T extends TSchema>(schema: T, text: string, file: string): Static<T> {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true })
  const syntax = doc.errors[0]
  if (syntax) throw new PolicyFileError(file, syntax.linePos?.[0]?.line, `not valid YAML: ${syntax.message.split('\n')[0]}`)
  const value = doc.toJS() as unknown
  const found = firstProblem(schema, value)
  if (!found) return value as Static<T>
  // The line of the deepest part of the path that exists in the file (an unknown key's own line, a missing key's parent).
  let line: number | undefined
  for (let depth = found.path.length; depth >= 0 && line === undefined; depth--) {
    const prefix = found.path.slice(0, depth).map((s) => (/^\d+$/.test(s) ? Number(s) : s))
    const node = prefix.length === 0 ? doc.contents : doc.getIn(prefix, true)
    const parent = depth === 0 ? undefined : depth === 1 ? doc.contents : doc.getIn(prefix.slice(0, -1), true)
    const key = isMap(parent) ? parent.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === prefix.at(-1))?.key : undefined
    const at = isNode(key) && key.range ? key.range[0] : isNode(node) && node.range ? node.range[0] : undefined
    if (at !== undefined) line = lineCounter.linePos(at).line
  }
  throw new PolicyFileError(file, line, `${found.path.length > 0 ? `${found.path.join('.')}: ` : ''}${found.problem}`)
}
