import t from 'tap'
import { Util } from 'casbin'
import type pg from 'pg'
import { matchesFilter, type MatchFunction } from '../../../src/engine/plan/filter.js'
import { patternRegex } from '../../../src/engine/plan/patterns.js'
import { portableRegex } from '../../../src/engine/plan/regex.js'
import { random } from '../../helpers/casbin-oracle.js'
import { postgres } from '../../helpers/postgres.js'

/*
 * The regular expressions a plan's `matches` node carries: what the planner accepts must mean in PostgreSQL what it
 * means in JavaScript, and what a pattern function compiles to must answer as node-casbin's function does. Both
 * are checked on random expressions and patterns against random strings holding the characters the two read
 * differently (line terminators, characters beyond U+FFFF, "?", "/", "."), in the real PostgreSQL when one runs.
 */

/** Strings as SQL and JavaScript may read differently: JavaScript's `.` stops at line terminators, and 😀 is one character to PostgreSQL, two to JavaScript. */
const CHARS = ['a', 'b', '/', '.', '1', '\n', '\r', '\u2028', ' ', '\u00a0', '😀', 'é', '?', '-', '_', ':', '{', '}']

function randomString(next: (n: number) => number, max = 7): string {
  return Array.from({ length: next(max + 1) }, () => CHARS[next(CHARS.length)]!).join('')
}

/** JavaScript regex sources, mostly within the portable subset, some beyond it (look-arounds, back-references, lazy quantifiers). */
const ATOMS = ['a', 'b', '/', '\\.', '\\?', '-', '.', '[^/]', '[a-b]', '[^a]', '\\d', '\\w', '\\s', '\\D', '\\S', '[\\d/]', '[^/.]', '😀', '\\u00e9', '\\n', '{', '}']
const QUANTIFIERS = ['', '', '', '*', '+', '?', '{1,2}', '{2}', '{0,}', '*?']
const UNSAFE = ['(?=a)', '(?!b)', '\\b', '\\1', '(?<n>a)']

function randomRegex(next: (n: number) => number, depth = 0): string {
  const terms = 1 + next(4)
  let out = next(3) === 0 ? '^' : ''
  for (let i = 0; i < terms; i++) {
    const kind = next(20)
    if (kind === 0) out += UNSAFE[next(UNSAFE.length)]
    else if (kind < 3 && depth < 2) out += `(${next(2) ? '?:' : ''}${randomRegex(next, depth + 1)}${next(2) ? `|${randomRegex(next, depth + 1)}` : ''})${QUANTIFIERS[next(QUANTIFIERS.length)]}`
    else out += ATOMS[next(ATOMS.length)]! + QUANTIFIERS[next(QUANTIFIERS.length)]
  }
  return next(3) === 0 ? `${out}$` : out
}

/** Each pair's answer in PostgreSQL: `value ~ regex`, all in one query (a regex PostgreSQL refuses fails it loudly). */
async function postgresAnswers(client: pg.Client, pairs: { value: string; regex: string }[]): Promise<boolean[]> {
  const { rows } = await client.query<{ m: boolean }>('SELECT v ~ r AS m FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(v, r, n) ORDER BY n', [pairs.map((p) => p.value), pairs.map((p) => p.regex)])
  return rows.map((r) => r.m)
}

t.test('an accepted regex means in PostgreSQL and in its canonical spelling what it means in JavaScript', async (t) => {
  const client = await postgres(t)
  const next = random(19)
  const pairs: { value: string; regex: string; js: boolean }[] = []
  let accepted = 0
  let refused = 0
  for (let i = 0; i < 3000; i++) {
    const source = randomRegex(next)
    let original: RegExp
    try {
      original = new RegExp(source)
    } catch {
      t.match(portableRegex(source), { problem: /not a valid regular expression/ }, source)
      continue
    }
    const portable = portableRegex(source)
    if ('problem' in portable) {
      refused++
      continue
    }
    accepted++
    if (JSON.stringify(portableRegex(portable.regex)) !== JSON.stringify(portable)) t.fail(`not canonical: ${source} -> ${portable.regex}`)
    const canonical = new RegExp(portable.regex)
    for (let j = 0; j < 12; j++) {
      const value = randomString(next)
      const js = original.test(value)
      if (canonical.test(value) !== js) t.fail(`canonical spelling differs in JavaScript: ${JSON.stringify({ source, regex: portable.regex, value })}`)
      pairs.push({ value, regex: portable.regex, js })
    }
  }
  t.ok(accepted > 1000, `accepted: ${accepted}`)
  t.ok(refused > 300, `refused: ${refused}`)
  if (!client) return
  const answers = await postgresAnswers(client, pairs)
  const wrong = pairs.filter((p, i) => answers[i] !== p.js)
  t.same(wrong.slice(0, 5), [], `PostgreSQL agrees with JavaScript on ${pairs.length} pairs`)
})

t.test('what has no common meaning is refused, with the construct named', async (t) => {
  const cases: [string, RegExp][] = [
    ['a(?=b)', /look-around/],
    ['(a)\\1', /escape "\\1"/],
    ['a*?', /lazy quantifier/],
    ['\\bword', /escape "\\b"/],
    ['^/docs/.$', /single-character wildcard/],
    ['^[^/]?$', /single-character wildcard/],
    ['.*[^/]+', /wildcard beside another wildcard/],
    ['[^/.][^/]+', /single-character wildcard/],
    ['😀+', /beyond U\+FFFF/],
    ['a{256}', /over 255/],
    ['\\p{L}', /escape "\\p"/],
    ['[]', /empty class/],
    ['x\\u0000', /U\+0000/],
    ['a(', /not a valid regular expression/],
  ]
  for (const [source, problem] of cases) t.match(portableRegex(source), { problem }, source)
  t.same(portableRegex('^/docs/\\d+(\\.json)?$'), { regex: '^/docs/[0-9]+(?:\\.json)?$' })
  t.same(portableRegex('^a.*$'), { regex: '^a[^\\n\\r\\u2028-\\u2029]*$' }, 'JavaScript\'s "." as the class it is')
  t.same(portableRegex('[^/.][^/]*'), { regex: '[^/.][^/]*' }, 'a run led by one wide class')
})

// node-casbin's functions, the reference (Casbin's own functions, as a decision calls them).
const CASBIN: Record<MatchFunction, (value: string, pattern: string) => boolean> = {
  keyMatch2: Util.keyMatch2Func,
  keyMatch3: Util.keyMatch3Func,
  keyMatch4: Util.keyMatch4Func,
  keyMatch5: Util.keyMatch5Func,
  regexMatch: Util.regexMatchFunc,
  globMatch: Util.globMatch,
} as Record<MatchFunction, (value: string, pattern: string) => boolean>

/** Path-like patterns for each function, with parameters, wildcards and the regex characters Casbin passes through. */
function randomPattern(fn: MatchFunction, next: (n: number) => number): string {
  const pick = <T>(values: readonly T[]): T => values[next(values.length)]!
  const segments: Record<MatchFunction, readonly string[]> = {
    keyMatch2: ['a', 'b', ':id', ':x', '*', 'a*', 'a.b', '1', 'a?'],
    keyMatch3: ['a', 'b', '{id}', '{x}', '*', 'a.b', '1', 'x{id}'],
    keyMatch4: ['a', 'b', '{id}', '{x}', '*', 'a.b', '1'],
    keyMatch5: ['a', 'b', '{id}', '{x}', '*', 'a.b', '1'],
    regexMatch: ['a', 'b+', '[0-9]+', '.*', '(a|b)', '\\.', '1?', '[^/]+'],
    globMatch: ['a', 'b', '*', 'a*', '*.b', '*a', '.b', '1'],
  }
  const count = 1 + next(4)
  const body = Array.from({ length: count }, () => pick(segments[fn])).join('/')
  if (fn === 'regexMatch') return `${next(2) ? '^' : ''}${next(2) ? '/' : ''}${body}${next(2) ? '$' : ''}`
  if (fn === 'globMatch') return `${pick(['', '/', '*/'])}${body}${next(4) === 0 ? '/' : ''}`
  return fn === 'keyMatch2' && next(10) === 0 ? '*' : `/${body}`
}

/** Values near the patterns: path segments, query strings, doubled and trailing slashes, and the characters that differ. */
function randomValue(next: (n: number) => number): string {
  const pick = <T>(values: readonly T[]): T => values[next(values.length)]!
  const segment = () => pick(['a', 'b', '1', 'a.b', 'ab', '.b', 'x.b', '', 'id', '😀', 'a\nb', 'aa', '{id}', ':id'])
  const path = Array.from({ length: next(5) }, segment).join(pick(['/', '/', '/', '//']))
  return `${pick(['/', '/', '', '//'])}${path}${pick(['', '', '/', '?q=1', '?a/b', '\u2028'])}`
}

t.test('a pattern function compiled to a filter answers as node-casbin\'s own function, in JavaScript and in PostgreSQL', async (t) => {
  const client = await postgres(t)
  const next = random(7)
  const pairs: { value: string; regex: string; js: boolean; fn: MatchFunction; pattern: string }[] = []
  for (const fn of Object.keys(CASBIN) as MatchFunction[]) {
    let compiled = 0
    for (let i = 0; i < 300; i++) {
      const pattern = randomPattern(fn, next)
      const result = patternRegex(fn, pattern)
      if ('problem' in result) continue
      compiled++
      const node = { op: 'matches', field: 'resource.id', function: fn, pattern, regex: result.regex } as const
      for (let j = 0; j < 20; j++) {
        const value = randomValue(next)
        const casbin = CASBIN[fn](value, pattern)
        if (matchesFilter(node, { id: value }) !== casbin) t.fail(`differs from Casbin: ${JSON.stringify({ fn, pattern, regex: result.regex, value, casbin })}`)
        // The SQL clause tests the value keyMatch5 keeps; the split itself is checked in the plan property test.
        pairs.push({ value: fn === 'keyMatch5' ? value.split('?')[0]! : value, regex: result.regex, js: casbin, fn, pattern })
      }
    }
    t.ok(compiled > 100, `${fn}: ${compiled} of 300 patterns compiled`)
  }
  if (!client) return
  const answers = await postgresAnswers(client, pairs)
  t.same(pairs.filter((p, i) => answers[i] !== p.js).slice(0, 5), [], `PostgreSQL agrees with Casbin on ${pairs.length} pairs`)
})

t.test('globMatch: every short pattern and value over a small alphabet, against minimatch through Casbin', async (t) => {
  // Patterns up to 4 and values up to 5 characters over the characters minimatch treats specially here.
  const strings = (alphabet: string[], max: number): string[] => {
    const out = ['']
    for (let length = 1, level = ['']; length <= max; length++) {
      level = level.flatMap((s) => alphabet.map((c) => s + c))
      out.push(...level)
    }
    return out
  }
  const values = strings(['a', '.', '/', 'b'], 5)
  let compiled = 0
  for (const pattern of strings(['a', '.', '/', '*'], 4)) {
    const result = patternRegex('globMatch', pattern)
    if ('problem' in result) continue
    compiled++
    const node = { op: 'matches', field: 'resource.id', function: 'globMatch', pattern, regex: result.regex } as const
    const wrong = values.filter((value) => matchesFilter(node, { id: value }) !== Util.globMatch(value, pattern))
    if (wrong.length > 0) t.fail(`globMatch(value, ${JSON.stringify(pattern)}) differs (regex ${result.regex}) on ${JSON.stringify(wrong.slice(0, 5))}`)
  }
  t.ok(compiled > 150, `patterns compiled: ${compiled}`)
})

t.test('each function\'s edge cases', async (t) => {
  const regex = (fn: MatchFunction, pattern: string) => patternRegex(fn, pattern)
  t.same(regex('keyMatch2', '/users/:id'), { regex: '^/users/[^/]+$' }, 'a :param is one segment')
  t.same(regex('keyMatch2', '*'), { regex: '^(?:[^\\n\\r\\u2028-\\u2029]*)$' }, 'a lone * is anything but a line terminator')
  t.same(regex('keyMatch2', '/a*'), { regex: '^/a*$' }, 'a * not after "/" stays a regex quantifier, as in Casbin')
  t.same(regex('keyMatch3', '/a/{id}/b'), { regex: '^/a/[^/]+/b$' })
  t.same(regex('keyMatch4', '/a/{x}/b/{y}'), { regex: '^/a/(?:[^/]+)/b/(?:[^/]+)$' }, 'distinct parameters: a plain test')
  t.match(regex('keyMatch4', '/a/{id}/b/{id}'), { problem: /repeated parameters/ })
  t.match(regex('keyMatch4', '/a/(x)/{id}'), { problem: /differ in number/ }, 'Casbin throws on what this pattern matches')
  t.same(regex('keyMatch5', '/a/{id}'), { regex: '^/a/[^/]+$' }, 'the query string is cut from the value, not written into the regex')
  t.same(regex('regexMatch', 'docs'), { regex: 'docs' }, 'unanchored, as Casbin searches')
  t.same(regex('globMatch', '*/a'), { regex: '^/+a/*$' }, 'Casbin drops the * of a leading */')
  t.same(regex('globMatch', '*.js'), { regex: '^[^/.][^/]*\\.js/*$' }, 'a leading * takes no leading "."')
  for (const pattern of ['a?', '[ab]', '{a,b}', '**', '!a', '#a', 'a//b', './a', '.a*', '+(a)']) t.match(regex('globMatch', pattern), { problem: String }, pattern)
  t.match(regex('keyMatch2', '/:'), { problem: /never finishes/ }, 'a pattern that would hang Casbin')
})
