/*
 * Regular expressions that mean the same in JavaScript (a RegExp without flags, as Casbin builds them) and in
 * PostgreSQL (`~`, advanced regular expressions), so that a plan's in-memory test and its SQL clause select the same
 * rows. A JavaScript source is parsed, held to a subset whose meaning is provably the same in both, and written back
 * in one canonical spelling both read alike; anything outside the subset is refused with the reason.
 *
 * The differences the subset steers around:
 * - JavaScript's `.` excludes \n, \r, \u2028 and \u2029; PostgreSQL's matches any character. `.` is written as the
 *   class it is in JavaScript. \d, \w and \s become their JavaScript classes (PostgreSQL's follow the locale).
 * - JavaScript without the `u` flag matches UTF-16 code units, PostgreSQL matches characters: a character beyond
 *   U+FFFF is two units to one and one to the other. Only a class that takes every surrogate (`.`, a negated class)
 *   can meet half of one, so such a class ("wide") must be a run (`X*`, `X+`, optionally led by one wide class, as
 *   `[^/.][^/]*`) with no other wide class before or after it in any match: a run then starts and ends beside a
 *   character, never inside a pair, and takes the same characters on both sides. Characters beyond U+FFFF may not be
 *   written in the expression itself.
 * - Back-references, look-arounds, word boundaries, lazy quantifiers, named groups, octal and control escapes and
 *   repeat counts over 255 (PostgreSQL's limit) have no common meaning here and are refused.
 */

type Range = readonly [number, number]

/** A class of characters (a literal is a class of one); `wide` classes take every surrogate code unit. */
interface SetNode {
  t: 'set'
  negated: boolean
  ranges: Range[]
}
interface AnchorNode {
  t: 'anchor'
  text: '^' | '$'
}
type Position = SetNode | AnchorNode
type Node = Position | { t: 'seq'; items: Node[] } | { t: 'alt'; alts: Node[] } | { t: 'group'; body: Node } | { t: 'rep'; body: Node; min: number; max: number }

class Unportable extends Error {}

const MAX_REPEAT = 255
const SURROGATES: Range = [0xd800, 0xdfff]
const LINE_TERMINATORS: Range[] = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
]
const DIGIT: Range[] = [[0x30, 0x39]]
const WORD: Range[] = [
  [0x41, 0x5a],
  [0x61, 0x7a],
  [0x30, 0x39],
  [0x5f, 0x5f],
]
// JavaScript's \s: WhiteSpace and LineTerminator.
const SPACE: Range[] = [[0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]]
const CHARACTER_ESCAPES: Record<string, number> = { n: 0x0a, r: 0x0d, t: 0x09, f: 0x0c, v: 0x0b }
const CLASS_ESCAPES: Record<string, Range[]> = { d: DIGIT, w: WORD, s: SPACE }
const PUNCTUATION = /^[!-/:-@[-`{-~]$/

const wide = (p: Position): boolean => p.t === 'set' && p.negated

class Parser {
  private i = 0
  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.alternation()
    if (this.i < this.src.length) throw new Unportable(`an unmatched ")"`)
    return node
  }

  private peek(): string | undefined {
    return this.src[this.i]
  }

  private alternation(): Node {
    const alts = [this.sequence()]
    while (this.peek() === '|') {
      this.i++
      alts.push(this.sequence())
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts }
  }

  private sequence(): Node {
    const items: Node[] = []
    while (this.i < this.src.length && this.peek() !== '|' && this.peek() !== ')') items.push(this.term())
    return { t: 'seq', items }
  }

  private term(): Node {
    const atom = this.atom()
    const quantifier = this.quantifier()
    if (!quantifier) return atom
    if (atom.t === 'anchor') throw new Unportable(`a quantifier after "${atom.text}"`)
    if (this.peek() === '?') throw new Unportable('a lazy quantifier')
    if (this.quantifierAhead()) throw new Unportable('two quantifiers in a row')
    return { t: 'rep', body: atom, ...quantifier }
  }

  /** The bounds of `{n}`, `{n,}` or `{n,m}` at the cursor, which JavaScript reads as a quantifier (else `{` is a character). */
  private braces(): { length: number; min: number; max: number } | undefined {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i))
    if (!m) return undefined
    const min = Number(m[1])
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3])
    return { length: m[0].length, min, max }
  }

  private quantifierAhead(): boolean {
    const c = this.peek()
    return c === '*' || c === '+' || c === '?' || (c === '{' && this.braces() !== undefined)
  }

  private quantifier(): { min: number; max: number } | undefined {
    const c = this.peek()
    if (c === '*' || c === '+' || c === '?') {
      this.i++
      return { min: c === '+' ? 1 : 0, max: c === '?' ? 1 : Infinity }
    }
    const braces = c === '{' ? this.braces() : undefined
    if (!braces) return undefined
    if (braces.min > MAX_REPEAT || (braces.max !== Infinity && braces.max > MAX_REPEAT)) throw new Unportable(`a repeat count over ${MAX_REPEAT}`)
    if (braces.min > braces.max) throw new Unportable('a repeat count out of order')
    this.i += braces.length
    return { min: braces.min, max: braces.max }
  }

  private atom(): Node {
    const c = this.src[this.i++]!
    switch (c) {
      case '^':
      case '$':
        return { t: 'anchor', text: c }
      case '.':
        return { t: 'set', negated: true, ranges: [...LINE_TERMINATORS] }
      case '(': {
        if (this.peek() === '?') {
          if (this.src[this.i + 1] !== ':') throw new Unportable('a look-around or named group')
          this.i += 2
        }
        const body = this.alternation()
        if (this.src[this.i++] !== ')') throw new Unportable('an unclosed "("')
        return { t: 'group', body }
      }
      case '[':
        return this.characterClass()
      case '\\':
        return this.escape()
      case '*':
      case '+':
      case '?':
        throw new Unportable(`nothing to repeat before "${c}"`)
      case '{':
        this.i--
        if (this.braces()) throw new Unportable('nothing to repeat before "{"')
        this.i++
        return single(c.charCodeAt(0))
      default:
        return single(checkedCode(c.charCodeAt(0)))
    }
  }

  private escape(): Node {
    const c = this.src[this.i++]
    if (c === undefined) throw new Unportable('a trailing "\\"')
    const lower = c.toLowerCase()
    if (CLASS_ESCAPES[lower]) return { t: 'set', negated: c !== lower, ranges: [...CLASS_ESCAPES[lower]!] }
    return single(this.characterEscape(c))
  }

  /** A character an escape stands for, inside or outside a class; refuses escapes without a common meaning. */
  private characterEscape(c: string): number {
    if (CHARACTER_ESCAPES[c] !== undefined) return CHARACTER_ESCAPES[c]!
    const hex = c === 'x' ? 2 : c === 'u' ? 4 : 0
    if (hex) {
      const digits = this.src.slice(this.i, this.i + hex)
      if (!new RegExp(`^[0-9A-Fa-f]{${hex}}$`).test(digits)) throw new Unportable(`the escape "\\${c}" without ${hex} hexadecimal digits`)
      this.i += hex
      return checkedCode(parseInt(digits, 16))
    }
    if (PUNCTUATION.test(c)) return c.charCodeAt(0)
    throw new Unportable(`the escape "\\${c}"`)
  }

  private characterClass(): SetNode {
    const negated = this.peek() === '^'
    if (negated) this.i++
    const ranges: Range[] = []
    if (this.peek() === ']') throw new Unportable(negated ? 'the class "[^]"' : 'the empty class "[]"')
    for (;;) {
      const c = this.src[this.i++]
      if (c === undefined) throw new Unportable('an unclosed "["')
      if (c === ']') break
      const lo = this.classAtom(c)
      if (this.peek() === '-' && this.src[this.i + 1] !== ']' && this.src[this.i + 1] !== undefined) {
        this.i++
        const hi = this.classAtom(this.src[this.i++]!)
        if (typeof lo !== 'number' || typeof hi !== 'number') throw new Unportable('a range with a class escape at one end')
        if (lo > hi) throw new Unportable('a range out of order')
        ranges.push([lo, hi])
      } else if (typeof lo === 'number') ranges.push([lo, lo])
      else ranges.push(...lo)
    }
    for (const [lo, hi] of ranges) {
      if (lo <= SURROGATES[1] && hi >= SURROGATES[0]) throw new Unportable('a class range over the surrogate code units (U+D800 to U+DFFF)')
    }
    return { t: 'set', negated, ranges }
  }

  private classAtom(c: string): number | Range[] {
    if (c !== '\\') return checkedCode(c.charCodeAt(0))
    const e = this.src[this.i++]
    if (e === undefined) throw new Unportable('a trailing "\\"')
    if (CLASS_ESCAPES[e]) return CLASS_ESCAPES[e]!
    if (e === 'b' || CLASS_ESCAPES[e.toLowerCase()]) throw new Unportable(`the escape "\\${e}" in a class`)
    return this.characterEscape(e)
  }
}

function checkedCode(code: number): number {
  if (code === 0) throw new Unportable('the character U+0000, which PostgreSQL text cannot hold')
  if (code >= SURROGATES[0] && code <= SURROGATES[1]) throw new Unportable('a character beyond U+FFFF (JavaScript counts it as two)')
  return code
}

const single = (code: number): SetNode => ({ t: 'set', negated: false, ranges: [[code, code]] })

/** Characters both dialects read literally outside a class; others are escaped or written as \uHHHH. */
const SPECIAL_OUTSIDE = new Set('\\^$.|?*+()[]{}')
const SPECIAL_INSIDE = new Set('\\]-^[')
const NAMED: Record<number, string> = { 0x0a: '\\n', 0x0d: '\\r', 0x09: '\\t' }

function writeChar(code: number, inClass: boolean): string {
  if (NAMED[code]) return NAMED[code]!
  if (code < 0x20 || code > 0x7e) return `\\u${code.toString(16).padStart(4, '0')}`
  const c = String.fromCharCode(code)
  return (inClass ? SPECIAL_INSIDE : SPECIAL_OUTSIDE).has(c) ? `\\${c}` : c
}

function write(node: Node): string {
  switch (node.t) {
    case 'anchor':
      return node.text
    case 'set': {
      const [first] = node.ranges
      if (!node.negated && node.ranges.length === 1 && first![0] === first![1]) return writeChar(first![0], false)
      const body = node.ranges.map(([lo, hi]) => (lo === hi ? writeChar(lo, true) : `${writeChar(lo, true)}-${writeChar(hi, true)}`)).join('')
      return `[${node.negated ? '^' : ''}${body}]`
    }
    case 'seq':
      return node.items.map(write).join('')
    case 'alt':
      return node.alts.map(write).join('|')
    case 'group':
      return `(?:${write(node.body)})`
    case 'rep': {
      const { min, max } = node
      const q = min === 0 && max === Infinity ? '*' : min === 1 && max === Infinity ? '+' : min === 0 && max === 1 ? '?' : max === Infinity ? `{${min},}` : min === max ? `{${min}}` : `{${min},${max}}`
      return write(node.body) + q
    }
  }
}

/** The first and last positions a node can match, whether it can match nothing, and (filled in) which positions follow which. */
interface Glushkov {
  nullable: boolean
  first: Set<Position>
  last: Set<Position>
}

const START = 'start'
const END = 'end'
type Neighbour = Position | typeof START | typeof END

function glushkov(node: Node, follow: Map<Position, Set<Neighbour>>): Glushkov {
  const link = (from: Iterable<Position>, to: Iterable<Neighbour>) => {
    for (const f of from) for (const t of to) follow.get(f)!.add(t)
  }
  switch (node.t) {
    case 'set':
    case 'anchor':
      follow.set(node, new Set())
      return { nullable: false, first: new Set([node]), last: new Set([node]) }
    case 'group':
      return glushkov(node.body, follow)
    case 'alt': {
      const parts = node.alts.map((a) => glushkov(a, follow))
      return { nullable: parts.some((p) => p.nullable), first: new Set(parts.flatMap((p) => [...p.first])), last: new Set(parts.flatMap((p) => [...p.last])) }
    }
    case 'rep': {
      const body = glushkov(node.body, follow)
      if (node.max > 1) link(body.last, body.first)
      return { nullable: body.nullable || node.min === 0, first: body.first, last: body.last }
    }
    case 'seq': {
      let result: Glushkov = { nullable: true, first: new Set(), last: new Set() }
      for (const item of node.items) {
        const next = glushkov(item, follow)
        link(result.last, next.first)
        result = {
          nullable: result.nullable && next.nullable,
          first: result.nullable ? new Set([...result.first, ...next.first]) : result.first,
          last: next.nullable ? new Set([...result.last, ...next.last]) : next.last,
        }
      }
      return result
    }
  }
}

/** Wide classes that are runs (`X*`, `X+`), and those leading one (`[^/.]` in `[^/.][^/]*`), with the run they lead. */
function runsOf(node: Node, runs: Set<Position>, heads: Map<Position, Position>): void {
  switch (node.t) {
    case 'seq':
      node.items.forEach((item, i) => {
        const next = node.items[i + 1]
        // Only before a `*` run: before `+` the run needs a character of its own, which the lead may have split with it.
        if (item.t === 'set' && wide(item) && next?.t === 'rep' && next.body.t === 'set' && wide(next.body) && next.max === Infinity && next.min === 0) heads.set(item, next.body)
        runsOf(item, runs, heads)
      })
      return
    case 'alt':
      return node.alts.forEach((a) => runsOf(a, runs, heads))
    case 'group':
      return runsOf(node.body, runs, heads)
    case 'rep':
      if (node.body.t === 'set' && wide(node.body) && node.max === Infinity && node.min <= 1) runs.add(node.body)
      return runsOf(node.body, runs, heads)
    default:
      return
  }
}

const UNIT_NOTE = 'JavaScript counts a character beyond U+FFFF as two, PostgreSQL as one'

/** Checks every wide class is a run (or leads one) with no other wide class beside it in any match. */
function checkWide(root: Node): void {
  const follow = new Map<Position, Set<Neighbour>>()
  const whole = glushkov(root, follow)
  const preceding = new Map<Position, Set<Neighbour>>([...follow.keys()].map((p) => [p, new Set<Neighbour>(whole.first.has(p) ? [START] : [])]))
  for (const [from, tos] of follow) for (const to of tos) if (to !== START && to !== END) preceding.get(to)!.add(from)
  for (const p of whole.last) follow.get(p)!.add(END)
  const runs = new Set<Position>()
  const heads = new Map<Position, Position>()
  runsOf(root, runs, heads)
  const leads = new Map([...heads].map(([head, run]) => [run, head]))
  const narrow = (n: Neighbour) => n === START || n === END || !wide(n)
  for (const p of follow.keys()) {
    if (!wide(p)) continue
    const run = heads.get(p)
    if (run) {
      if (![...preceding.get(p)!].every(narrow) || ![...follow.get(p)!].every((n) => n === run || narrow(n))) throw new Unportable(`a wildcard beside another wildcard (${UNIT_NOTE})`)
    } else if (runs.has(p)) {
      const ok = (n: Neighbour) => n === p || n === leads.get(p) || narrow(n)
      if (![...preceding.get(p)!].every(ok) || ![...follow.get(p)!].every(ok)) throw new Unportable(`a wildcard beside another wildcard (${UNIT_NOTE})`)
    } else {
      throw new Unportable(`a single-character wildcard ("." or a negated class) not repeated with * or + (${UNIT_NOTE})`)
    }
  }
}

/**
 * A JavaScript regular expression (source, no flags) in a spelling whose meaning PostgreSQL's `~` shares, or why
 * there is none. The result is canonical: converting it again gives it back.
 */
export function portableRegex(source: string): { regex: string } | { problem: string } {
  try {
    // What JavaScript refuses, Casbin fails on: the caller sees that before asking here.
    new RegExp(source)
  } catch (err) {
    return { problem: `it is not a valid regular expression (${(err as Error).message})` }
  }
  try {
    const tree = new Parser(source).parse()
    checkWide(tree)
    return { regex: write(tree) }
  } catch (err) {
    if (err instanceof Unportable) return { problem: `the regular expression holds ${err.message}, which SQL does not read as JavaScript does` }
    throw err
  }
}

/** A portable regex that is plain text between optional anchors: what Prisma's equals/startsWith/endsWith/contains can say. */
export function regexLiteral(regex: string): { text: string; start: boolean; end: boolean } | undefined {
  let tree: Node
  try {
    tree = new Parser(regex).parse()
  } catch {
    return undefined
  }
  const items = tree.t === 'seq' ? [...tree.items] : [tree]
  const start = items[0]?.t === 'anchor' && items[0].text === '^'
  if (start) items.shift()
  const last = items[items.length - 1]
  const end = last?.t === 'anchor' && last.text === '$'
  if (end) items.pop()
  let text = ''
  for (const item of items) {
    if (item.t !== 'set' || item.negated || item.ranges.length !== 1 || item.ranges[0]![0] !== item.ranges[0]![1]) return undefined
    text += String.fromCharCode(item.ranges[0]![0])
  }
  return { text, start, end }
}
