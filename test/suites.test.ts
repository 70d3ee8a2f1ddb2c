import t from 'tap'
import { groupOf, TEST_GROUPS, testFiles } from './helpers/test-groups.js'

t.test('every test file runs in exactly one group of npm test, and every group runs some', async (t) => {
  const files = await testFiles()
  t.ok(files.length > 50, `${files.length} test files found`)
  const orphans = files.filter((f) => groupOf(f) === undefined)
  t.same(orphans, [], 'test files that npm test would not run: add a prefix to TEST_GROUPS in test/helpers/test-groups.ts')
  for (const group of TEST_GROUPS) t.ok(files.some((f) => groupOf(f) === group.name), `group ${group.name} has test files`)
})
