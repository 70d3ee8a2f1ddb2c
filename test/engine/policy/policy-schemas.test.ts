import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import Value from 'typebox/value'
import { parse } from 'yaml'
import { POLICY_FILE_SCHEMAS, schemaPathOf } from '../../../src/engine/policy/files/schemas.js'
import { readPolicySnapshot } from '../../../src/engine/policy/policy-snapshot.js'
import { PACKAGE_ROOT } from '../../../src/package-info.js'
import { schemaFiles, SHIPPED_POLICY_DIRS } from '../../../scripts/schemas.js'

t.test('the committed JSON Schemas are what the TypeBox schemas generate (run `npm run schemas` when this fails)', async (t) => {
  for (const [path, text] of schemaFiles()) {
    const committed = existsSync(join(PACKAGE_ROOT, path)) ? readFileSync(join(PACKAGE_ROOT, path), 'utf8') : undefined
    t.equal(committed, text, `${path} is current`)
  }
})

t.test('every shipped YAML policy file names its schema, and its content is valid under the published JSON Schema', async (t) => {
  for (const dir of SHIPPED_POLICY_DIRS) {
    for (const file of Object.keys(POLICY_FILE_SCHEMAS)) {
      const path = join(PACKAGE_ROOT, dir, file)
      if (!existsSync(path)) continue
      const text = readFileSync(path, 'utf8')
      const reference = /^# yaml-language-server: \$schema=(\S+)\n/.exec(text)?.[1]
      t.equal(reference, `./${schemaPathOf(file)}`, `${dir}/${file} names its schema on its first line`)
      // What an editor does with the comment: read the JSON file it points to and check the document against it.
      const published = JSON.parse(readFileSync(join(dirname(path), reference ?? ''), 'utf8')) as object
      const content = parse(text) as Record<string, unknown>
      t.ok(Value.Check(published, content), `${dir}/${file} is valid under its published schema`)
      t.notOk(Value.Check(published, { ...content, misspelt: true }), `a misspelt top-level key in ${dir}/${file} is not`)
    }
  }
})

t.test('the schemas directory beside the policy files is never read as a policy file', async (t) => {
  const snapshot = await readPolicySnapshot(join(PACKAGE_ROOT, 'policies'))
  t.ok(existsSync(join(PACKAGE_ROOT, 'policies', 'schemas')), 'the example policy directory holds the schemas')
  t.same([...snapshot.files.keys()].filter((name) => name.includes('schema')), [])
})
