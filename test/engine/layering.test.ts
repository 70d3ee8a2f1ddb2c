import t from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

/*
 * The engine is a library the service is built on: it may import itself, Node's built-ins and packages, never
 * the rest of the project (the service implements the engine's ports, src/engine/ports.ts, not the other way round).
 * And a decision reads as named steps: no function in src/engine/pdp.ts grows past a screen.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const ENGINE = join(ROOT, 'src', 'engine')
const PACKAGE_NAME = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string }).name
const MAX_FUNCTION_LINES = 60

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries
    .filter((e) => e.isFile() && /\.[cm]?tsx?$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort()
}

interface ModuleReference {
  specifier: string
  line: number
}

/** Every module a file names: static imports and re-exports, import = require, import() (in code and in types) and require calls. */
function moduleReferences(file: string, text: string): { references: ModuleReference[]; unresolvable: number[] } {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const references: ModuleReference[] = []
  const unresolvable: number[] = []
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1
  const named = (node: ts.Node, argument: ts.Node | undefined) => {
    if (argument && ts.isStringLiteralLike(argument)) references.push({ specifier: argument.text, line: lineOf(node) })
    else unresolvable.push(lineOf(node))
  }
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) named(node, node.moduleSpecifier)
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) named(node, node.moduleReference.expression)
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) named(node, node.argument.literal)
    else if (ts.isCallExpression(node)) {
      const callee = node.expression
      const isImport = callee.kind === ts.SyntaxKind.ImportKeyword
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require'
      // createRequire(import.meta.url)('name'): the require function built on the spot.
      const isCreatedRequire = ts.isCallExpression(callee) && ts.isIdentifier(callee.expression) && callee.expression.text === 'createRequire'
      if (isImport || isRequire || isCreatedRequire) named(node, node.arguments[0])
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return { references, unresolvable }
}

/** Why a specifier leaves the engine; undefined when it stays inside it or names a built-in (node:) or a package. */
function violation(file: string, specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/')) {
    const target = resolve(dirname(file), specifier)
    return target === ENGINE || target.startsWith(ENGINE + sep) ? undefined : `resolves to ${relative(ROOT, target)}`
  }
  if (specifier.startsWith('#')) return 'a package.json import alias, which may point anywhere in the project'
  if (specifier === PACKAGE_NAME || specifier.startsWith(`${PACKAGE_NAME}/`)) return 'the package importing itself'
  return undefined
}

t.test('the layering check finds every kind of module reference', async (t) => {
  const sample = [
    "import a from '../x.js'",
    "import type { B } from '../y.js'",
    "export { c } from '../../z.js'",
    "export * from './inside.js'",
    "import e = require('../e.js')",
    "type F = typeof import('../f.js')",
    "const g = await import('../g.js')",
    "const h = require('../h.js')",
    "const i = createRequire(import.meta.url)('../i.js')",
    'const j = await import(somewhere)',
  ].join('\n')
  const found = moduleReferences(join(ENGINE, 'sample.ts'), sample)
  t.same(
    found.references.map((r) => r.specifier),
    ['../x.js', '../y.js', '../../z.js', './inside.js', '../e.js', '../f.js', '../g.js', '../h.js', '../i.js'],
  )
  t.same(found.unresolvable, [10], 'an import whose target is computed cannot be checked, so it counts as a violation')
  const file = join(ENGINE, 'risk', 'sample.ts')
  t.equal(violation(file, '../ports.js'), undefined, 'a sibling folder of the engine')
  t.equal(violation(file, '../../store/state-store.js'), 'resolves to src/store/state-store.js')
  t.equal(violation(file, '../../engine-extras/x.js'), 'resolves to src/engine-extras/x.js', 'a folder that only starts like the engine')
  t.equal(violation(file, 'node:net'), undefined)
  t.equal(violation(file, 'lru-cache'), undefined)
  t.ok(violation(file, PACKAGE_NAME))
  t.ok(violation(file, '#internal'))
})

t.test('nothing in src/engine imports from outside it', async (t) => {
  const files = await sources(ENGINE)
  t.ok(files.length > 20, 'the engine sources were found')
  const violations: string[] = []
  for (const file of files) {
    const { references, unresolvable } = moduleReferences(file, await readFile(file, 'utf8'))
    const where = (line: number) => `${relative(ROOT, file)}:${line}`
    for (const line of unresolvable) violations.push(`${where(line)}: an import whose target is computed`)
    for (const { specifier, line } of references) {
      const why = violation(file, specifier)
      if (why !== undefined) violations.push(`${where(line)}: '${specifier}' ${why}`)
    }
  }
  t.same(violations, [], 'imports that leave the engine')
})

t.test(`no function in src/engine/pdp.ts is over ${MAX_FUNCTION_LINES} lines`, async (t) => {
  const file = join(ENGINE, 'pdp.ts')
  const source = ts.createSourceFile(file, await readFile(file, 'utf8'), ts.ScriptTarget.Latest, true)
  const lengths: { name: string; lines: number }[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line
      const name = node.name && ts.isIdentifier(node.name) ? node.name.text : `(anonymous at line ${start + 1})`
      lengths.push({ name, lines: end - start + 1 })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  t.ok(lengths.some((f) => f.name === 'createPdp'), 'the functions were found')
  t.same(
    lengths.filter((f) => f.lines > MAX_FUNCTION_LINES),
    [],
    'functions over the limit',
  )
})
