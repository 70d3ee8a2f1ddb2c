/**
 * Just enough of Go's text/template to check Helm templates without helm: the actions (`{{ … }}`),
 * whether their blocks balance, and which `.Values` paths they read, following `with` scopes and
 * variables assigned from `.Values`.
 */

export interface Action {
  /** The action's text without delimiters, trim markers or surrounding space. */
  text: string
  line: number
}

/** Actions in source order; comments are dropped. String literals may contain `}}`. */
export function actions(source: string): Action[] {
  const found: Action[] = []
  let at = 0
  for (;;) {
    const open = source.indexOf('{{', at)
    if (open < 0) return found
    let i = open + 2
    if (source[i] === '-' && /\s/.test(source[i + 1] ?? '')) i++
    while (/\s/.test(source[i] ?? '')) i++
    if (source.startsWith('/*', i)) {
      const close = source.indexOf('*/', i + 2)
      if (close < 0) throw new Error(`unclosed comment at line ${lineOf(source, open)}`)
      const end = source.indexOf('}}', close + 2)
      if (end < 0) throw new Error(`unclosed action at line ${lineOf(source, open)}`)
      at = end + 2
      continue
    }
    const start = i
    let quote: string | undefined
    for (; i < source.length; i++) {
      const c = source[i]!
      if (quote) {
        if (c === '\\' && quote !== '`') i++
        else if (c === quote) quote = undefined
      } else if (c === '"' || c === '`' || c === "'") {
        quote = c
      } else if (c === '}' && source[i + 1] === '}') {
        break
      }
    }
    if (i >= source.length) throw new Error(`unclosed action at line ${lineOf(source, open)}`)
    const text = source
      .slice(start, i)
      .replace(/\s-$/, '')
      .trim()
    found.push({ text, line: lineOf(source, open) })
    at = i + 2
  }
}

function lineOf(source: string, index: number): number {
  return source.slice(0, index).split('\n').length
}

const OPENERS = new Set(['if', 'range', 'with', 'define', 'block'])

/** Problems with block structure: an `end` or `else` without a block, or a block never closed. */
export function unbalanced(list: Action[]): string[] {
  const problems: string[] = []
  const stack: Action[] = []
  for (const action of list) {
    const keyword = action.text.split(/[\s(]/, 1)[0]!
    if (OPENERS.has(keyword)) stack.push(action)
    else if (keyword === 'else') {
      const open = stack.at(-1)
      if (!open || !/^(if|with|range)\b/.test(open.text)) problems.push(`line ${action.line}: else outside if/with/range`)
    } else if (keyword === 'end') {
      if (!stack.pop()) problems.push(`line ${action.line}: end without a block`)
    }
  }
  for (const open of stack) problems.push(`line ${open.line}: "${open.text}" is never closed`)
  return problems
}

const withoutStrings = (text: string) => text.replace(/"(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)'/g, '""')

/** `.a.b` field chains not preceded by a name, `$`, `)` or `]` (those are method calls or other variables). */
const FIELD_CHAIN = /(?<![\w$)\]])\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)/g
/** `$name.a.b`, and `$.a.b` (the root context). */
const VARIABLE_CHAIN = /\$([A-Za-z_]\w*)?((?:\.[A-Za-z_]\w*)+)/g

export interface ValuesUse {
  path: string
  line: number
}

/** A scope's dot: the root context, a known values path, or something the scanner cannot follow. */
type Dot = { kind: 'root' } | { kind: 'values'; path: string } | { kind: 'unknown' }

/**
 * Every values path the actions read: `.Values.x.y`, `$.Values.x.y`, fields of `.` inside
 * `with .Values.x`, and fields of variables assigned from `.Values`. Also returns the paths
 * rendered whole with toYaml (their inside is Kubernetes' business, not the chart's).
 */
export function valuesUses(list: Action[]): { uses: ValuesUse[]; wholeObjects: Set<string> } {
  const uses: ValuesUse[] = []
  const wholeObjects = new Set<string>()
  const variables = new Map<string, string>()
  const scopes: { keyword: string; dot: Dot; outer: Dot }[] = []
  const dot = (): Dot => scopes.at(-1)?.dot ?? { kind: 'root' }

  /** The values path an expression names, when it names one. */
  const resolve = (expr: string, current: Dot): string | undefined => {
    const values = /^\$?\.Values((?:\.[A-Za-z_]\w*)*)$/.exec(expr)
    if (values) return values[1]!.slice(1)
    const variable = /^\$([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)*)$/.exec(expr)
    if (variable && variables.has(variable[1]!)) return [variables.get(variable[1]!), variable[2]!.slice(1)].filter((s) => s !== '').join('.')
    if (current.kind === 'values' && expr === '.') return current.path
    const field = /^\.([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$/.exec(expr)
    if (field && current.kind === 'values') return `${current.path}.${field[1]}`
    return undefined
  }

  for (const action of list) {
    const text = withoutStrings(action.text)
    const keyword = text.split(/[\s(]/, 1)[0]!
    const current = dot()

    for (const match of text.matchAll(FIELD_CHAIN)) {
      const chain = match[1]!
      if (text[match.index! - 1] === '$') continue
      if (current.kind === 'root' && chain.startsWith('Values.')) uses.push({ path: chain.slice('Values.'.length), line: action.line })
      else if (current.kind === 'values') uses.push({ path: `${current.path}.${chain}`, line: action.line })
    }
    for (const match of text.matchAll(VARIABLE_CHAIN)) {
      const [, name, rest] = match as unknown as [string, string | undefined, string]
      if (name === undefined && rest.startsWith('.Values.')) uses.push({ path: rest.slice('.Values.'.length), line: action.line })
      else if (name !== undefined && variables.has(name)) uses.push({ path: `${variables.get(name)}${rest}`, line: action.line })
    }
    for (const match of text.matchAll(/toYaml\s+(\$?[.\w$]+)/g)) {
      const path = resolve(match[1]!, current)
      if (path !== undefined) wholeObjects.add(path)
    }

    const assignment = /^\$([A-Za-z_]\w*)\s*:?=\s*(\S+)$/.exec(text)
    if (assignment) {
      const path = resolve(assignment[2]!, current)
      if (path !== undefined) variables.set(assignment[1]!, path)
    }

    if (keyword === 'with') {
      const path = resolve(text.slice(4).trim(), current)
      scopes.push({ keyword, dot: path === undefined ? { kind: 'unknown' } : { kind: 'values', path }, outer: current })
    } else if (keyword === 'range') {
      scopes.push({ keyword, dot: { kind: 'unknown' }, outer: current })
    } else if (keyword === 'define' || keyword === 'block') {
      scopes.push({ keyword, dot: { kind: 'root' }, outer: current })
    } else if (keyword === 'if') {
      scopes.push({ keyword, dot: current, outer: current })
    } else if (keyword === 'else') {
      const scope = scopes.at(-1)
      // The else branch of a with runs with the outer dot.
      if (scope && scope.keyword === 'with') scope.dot = scope.outer
    } else if (keyword === 'end') {
      scopes.pop()
    }
  }
  return { uses, wholeObjects }
}

/** Whether a dotted path exists in a parsed values tree (the leaf may be empty or null). */
export function hasPath(values: unknown, path: string): boolean {
  let node = values
  for (const segment of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, segment)) return false
    node = (node as Record<string, unknown>)[segment]
  }
  return true
}
