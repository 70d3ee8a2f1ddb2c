import { FunctionMap } from 'casbin'

/**
 * Casbin's built-in functions that test a request string against a pattern written in a policy line. Casbin calls
 * them as fn(request value, pattern); the indexed evaluator calls the very same functions on its candidate lines.
 */
const BUILTINS = FunctionMap.loadFunctionMap().getFunctions() as Map<string, (...args: unknown[]) => unknown>

/**
 * The ones the indexed evaluator applies to candidate lines. Once every policy pattern has passed patternProblem,
 * they fail on no request except ipMatch, on a request value that is not an address. keyMatch4 is absent: it fails
 * on requests that match a pattern with groups of its own, whatever the pattern.
 */
export const INDEXED_PATTERN_FUNCTIONS: ReadonlySet<string> = new Set(['keyMatch', 'keyMatch2', 'keyMatch3', 'keyMatch5', 'regexMatch', 'globMatch', 'ipMatch'])

export function patternFunction(name: string): (request: string, pattern: string) => boolean {
  const fn = BUILTINS.get(name)!
  return (request, pattern) => fn(request, pattern) as boolean
}

/**
 * Casbin rewrites the named parameters of a keyMatch2-5 pattern in a loop that only ends when none is left; a
 * parameter its rewrite cannot take ("/:" before a "/" or the end, "/{" without "}") keeps it spinning forever.
 */
export const PARAMETER_LOOPS: Readonly<Record<string, { marker: string; rewrite: RegExp; by: string }>> = {
  keyMatch2: { marker: '/:', rewrite: /(.*):[^/]+(.*)/g, by: '$1[^/]+$2' },
  keyGet2: { marker: '/:', rewrite: /(.*):[^/]+(.*)/g, by: '$1[^/]+$2' },
  keyMatch3: { marker: '/{', rewrite: /(.*){[^/]+}(.*)/g, by: '$1[^/]+$2' },
  keyMatch4: { marker: '/{', rewrite: /(.*){[^/]+}(.*)/g, by: '$1([^/]+)$2' },
  keyMatch5: { marker: '/{', rewrite: /(.*){[^/]+}(.*)/g, by: '$1[^/]+$2' },
}

/** Functions whose second argument is a pattern that can hang Casbin (PARAMETER_LOOPS) or fail to compile. */
export const PATTERN_ARGUMENT_FUNCTIONS: ReadonlySet<string> = new Set([...Object.keys(PARAMETER_LOOPS), 'regexMatch', 'globMatch', 'ipMatch'])

/** Why Casbin's `fn(x, pattern)` would hang or fail whatever x is, or undefined when the pattern is usable. */
export function patternProblem(name: string, pattern: string): string | undefined {
  const loop = PARAMETER_LOOPS[name]
  if (loop) {
    let rest = pattern
    while (rest.includes(loop.marker)) {
      const next = rest.replace(loop.rewrite, loop.by)
      if (next === rest) return `${name} never finishes on the pattern "${pattern}" (a "${loop.marker}" parameter without a name)`
      rest = next
    }
  }
  try {
    // An address for ipMatch (whose failure on other request values is the request's, not the pattern's).
    BUILTINS.get(name)!(name === 'ipMatch' ? '127.0.0.1' : '/', pattern, '')
  } catch (err) {
    return `${name} fails on the pattern "${pattern}": ${(err as Error).message}`
  }
  return undefined
}
