import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { jsonSchemaText, POLICY_FILE_SCHEMAS, schemaPathOf } from '../src/engine/policy/files/schemas.js'
import { PACKAGE_ROOT } from '../src/package-info.js'

/** The repository's policy directories that ship with their schemas: the examples and the Helm chart's copy. */
export const SHIPPED_POLICY_DIRS: readonly string[] = ['policies', 'helm/pdp/policies']

/**
 * The JSON Schema of every YAML policy file, as it belongs beside each shipped policy directory (path
 * relative to the package root → text), generated from the TypeBox schemas the PDP validates with, so
 * that editors following a file's `# yaml-language-server: $schema=` comment check and complete it.
 */
export function schemaFiles(): Map<string, string> {
  const files = new Map<string, string>()
  for (const dir of SHIPPED_POLICY_DIRS) for (const file of Object.keys(POLICY_FILE_SCHEMAS)) files.set(join(dir, schemaPathOf(file)), jsonSchemaText(file))
  return files
}

/** `npm run schemas` after changing a schema; test/engine/policy/policy-schemas.test.ts fails while the files are stale. */
if (import.meta.filename === process.argv[1]) {
  for (const [path, text] of schemaFiles()) {
    await mkdir(dirname(join(PACKAGE_ROOT, path)), { recursive: true })
    await writeFile(join(PACKAGE_ROOT, path), text)
    process.stdout.write(`wrote ${path}\n`)
  }
}
