import { LineCounter, isMap, isNode, parseDocument, type Document } from 'yaml'
import { PolicyFileError } from './policy-files.js'

export type YamlPath = readonly (string | number)[]

/** A parsed YAML policy file that can point at the line of any value in it. */
export interface YamlFile {
  file: string
  value: unknown
  /** 1-based line of the value at `path`, or of its nearest existing parent. */
  lineOf(path: YamlPath): number | undefined
  /** Throws a PolicyFileError located at `path`. */
  fail(path: YamlPath, problem: string): never
}

export function parseYamlFile(text: string, file: string): YamlFile {
  const lineCounter = new LineCounter()
  const doc: Document = parseDocument(text, { lineCounter, uniqueKeys: true })
  const first = doc.errors[0]
  if (first) {
    throw new PolicyFileError(file, first.linePos?.[0]?.line, `not valid YAML: ${first.message.split('\n')[0]}`)
  }
  const lineOf = (path: YamlPath): number | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const prefix = path.slice(0, depth)
      const node = prefix.length === 0 ? doc.contents : doc.getIn(prefix, true)
      if (isNode(node) && node.range) {
        // For a key in a map, the key's own line reads better than where its value starts.
        if (depth > 0) {
          const parent = depth === 1 ? doc.contents : doc.getIn(prefix.slice(0, -1), true)
          if (isMap(parent)) {
            const pair = parent.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === prefix[prefix.length - 1])
            const key = pair?.key
            if (isNode(key) && key.range) return lineCounter.linePos(key.range[0]).line
          }
        }
        return lineCounter.linePos(node.range[0]).line
      }
    }
    return undefined
  }
  return {
    file,
    value: doc.toJS() as unknown,
    lineOf,
    fail(path, problem) {
      const where = path.length > 0 ? `${path.join('.')}: ` : ''
      throw new PolicyFileError(file, lineOf(path), `${where}${problem}`)
    },
  }
}
