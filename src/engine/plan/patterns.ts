import { PARAMETER_LOOPS, patternProblem } from '../policy/pattern-functions.js'
import type { MatchFunction } from './filter.js'
import { portableRegex } from './regex.js'

/*
 * Casbin's pattern functions as one regular expression each, so that a call on a resource field becomes a filter node
 * that SQL can run. Each follows node-casbin's own code (lib/cjs/util/builtinOperators.js) step by step: keyMatch2-5
 * rewrite the pattern into a regular expression (the pattern's other characters keep their regex meaning, as in
 * Casbin), regexMatch uses the pattern as it is (an unanchored search), globMatch is minimatch's default matching.
 */

/** Casbin's rewrite of named parameters, repeated until none is left (patterns that would loop are refused first). */
function rewriteParameters(pattern: string, fn: 'keyMatch2' | 'keyMatch3' | 'keyMatch4' | 'keyMatch5'): string {
  const { marker, rewrite, by } = PARAMETER_LOOPS[fn]!
  let key = pattern.replace(/\/\*/g, '/.*')
  while (key.includes(marker)) key = key.replace(rewrite, by)
  return key
}

/** keyMatch4's parameter names, collected as Casbin collects them (every "}" closes one, from the last "{"). */
function keyMatch4Tokens(pattern: string): string[] {
  const key = pattern.replace(/\/\*/g, '/.*')
  const tokens: string[] = []
  let j = -1
  for (let i = 0; i < key.length; i++) {
    if (key[i] === '{') j = i
    else if (key[i] === '}') tokens.push(key.substring(j, i + 1))
  }
  return tokens
}

const groupCount = (source: string): number => new RegExp(`${source}|`).exec('')!.length - 1

/** The JavaScript regular expression Casbin tests the value with, or why its answer is not one regex test. */
function casbinRegex(fn: MatchFunction, pattern: string): { source: string } | { problem: string } {
  switch (fn) {
    case 'keyMatch2': {
      const key = rewriteParameters(pattern, fn)
      return { source: `^${key === '*' ? '(.*)' : key}$` }
    }
    case 'keyMatch3':
    case 'keyMatch5':
      return { source: `^${rewriteParameters(pattern, fn)}$` }
    case 'keyMatch4': {
      const source = `^${rewriteParameters(pattern, fn)}$`
      const tokens = keyMatch4Tokens(pattern)
      if (new Set(tokens).size < tokens.length) return { problem: 'keyMatch4 requires repeated parameters to hold equal values, which needs a back-reference, and SQL and JavaScript back-references are not held to agree here' }
      // Casbin throws on every value the pattern matches when its groups and parameters differ in number.
      if (groupCount(source) !== tokens.length) return { problem: 'keyMatch4 fails (Casbin throws) on the values this pattern matches: its groups and its {parameters} differ in number' }
      return { source }
    }
    case 'regexMatch':
      return { source: pattern }
    case 'globMatch':
      return globRegex(pattern)
  }
}

/** Characters minimatch gives a meaning to (besides * and /), refused rather than followed into its corners. */
const GLOB_SPECIAL = /[?[\]{}()!+@\\]/

/**
 * minimatch(value, pattern) with its default options, for patterns of literal characters, `/` and single `*`s. The
 * value is split at runs of "/" and the pattern's segments must match its segments one for one (a trailing "/" in
 * the value may be left over); a `*` matches within a segment, and a segment starting with `*` never starts with ".".
 */
function globRegex(raw: string): { source: string } | { problem: string } {
  // Casbin drops the "*" of a pattern starting with "*/" (minimatch issue 195).
  const pattern = raw[0] === '*' && raw[1] === '/' ? raw.substring(1) : raw
  if (pattern === '') return { source: '^$' }
  if (pattern[0] === '#' || pattern[0] === '!') return { problem: `a glob starting with "${pattern[0]}" (minimatch reads it as a comment or a negation)` }
  if (GLOB_SPECIAL.test(pattern)) return { problem: 'a glob with ?, [...], {...}, extglobs or escapes (only literal characters, "/" and single "*")' }
  const segments = pattern.split('/')
  const parts: string[] = []
  for (const [i, segment] of segments.entries()) {
    const edge = i === 0 || i === segments.length - 1
    if (segment === '' && !edge) return { problem: 'a glob with an empty segment ("//")' }
    if (segment === '.' || segment === '..') return { problem: `a glob with a "${segment}" segment` }
    if (segment.includes('**')) return { problem: 'a glob with "**"' }
    if (segment.startsWith('.') && segment.includes('*')) return { problem: 'a glob segment starting with "." and holding "*" (minimatch never matches "." or ".." with it)' }
    parts.push(globSegment(segment))
  }
  return { source: `^${parts.join('\\/+')}\\/*$` }
}

const escapeLiteral = (text: string): string => text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&')

function globSegment(segment: string): string {
  const pieces = segment.split('*')
  if (pieces.length === 1) return escapeLiteral(segment)
  let body = pieces.map(escapeLiteral).join('[^/]*')
  // A leading "*" may not take a leading "."; alone it must take something.
  if (pieces[0] === '') {
    const rest = pieces.slice(1).map(escapeLiteral).join('[^/]*')
    const mustTake = rest === '' || rest.startsWith('\\.')
    body = mustTake ? `[^/.][^/]*${rest}` : `(?:[^/.][^/]*)?${rest}`
  }
  return body
}

/** What a call fn(resource field, pattern) tests, as a portable regex (for keyMatch5, of the value before its first "?"), or why it cannot be one. */
export function patternRegex(fn: MatchFunction, pattern: string): { regex: string } | { problem: string } {
  const problem = patternProblem(fn, pattern)
  if (problem) return { problem }
  const casbin = casbinRegex(fn, pattern)
  if ('problem' in casbin) return casbin
  return portableRegex(casbin.source)
}
