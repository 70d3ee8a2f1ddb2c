import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { EXAMPLE_POLICIES, ROOT } from '../helpers/build.js'
import { loadPolicyBundle } from '../../src/engine/policy/bundle.js'
import { isSensitive } from '../../src/identity/grants.js'
import { parseIdentityPolicy } from '../../src/engine/policy/files/identity.js'

const NO_ROLES: ReadonlySet<string> = new Set()

t.test('the bundled identity.yaml marks admin roles and admin-level permissions as sensitive', async (t) => {
  const text = await readFile(join(EXAMPLE_POLICIES, 'identity.yaml'), 'utf8')
  t.equal(await readFile(join(ROOT, 'helm/pdp/policies/identity.yaml'), 'utf8'), text, 'the chart ships the same file')
  const bundle = await loadPolicyBundle(EXAMPLE_POLICIES)
  const policy = bundle.identity
  const sensitive = (resourceType: string, action: string) => isSensitive({ permission: { resourceType, action } }, policy, bundle.sensitiveGrantRoles)
  for (const [type, action] of [['system.config', 'update'], ['system.logs', 'read'], ['users', 'create'], ['users', 'update'], ['users', 'delete']]) {
    t.ok(sensitive(type!, action!), `${type} ${action}`)
  }
  for (const [type, action] of [['users', 'read'], ['documents', 'read'], ['payroll', 'export']]) t.notOk(sensitive(type!, action!), `${type} ${action} is not`)
  t.ok(isSensitive({ role: 'admin' }, policy, bundle.sensitiveGrantRoles))
  t.notOk(isSensitive({ role: 'manager' }, policy, bundle.sensitiveGrantRoles), 'manager confers nothing sensitive')
  t.notOk(isSensitive({ role: 'employee' }, policy, bundle.sensitiveGrantRoles))
})

t.test('"*" matches any resource type or action', async (t) => {
  const policy = parseIdentityPolicy('grants:\n  sensitivePermissions:\n    - { resourceType: "*", action: delete }\n    - { resourceType: billing, action: "*" }\n')
  t.ok(isSensitive({ permission: { resourceType: 'documents', action: 'delete' } }, policy, NO_ROLES))
  t.ok(isSensitive({ permission: { resourceType: 'billing', action: 'refund' } }, policy, NO_ROLES))
  t.notOk(isSensitive({ permission: { resourceType: 'documents', action: 'read' } }, policy, NO_ROLES))
  t.same(parseIdentityPolicy('grants:\n  maxDurationSeconds: 60\n').grants.sensitivePermissions, [], 'none by default')
})

t.test('a bad sensitivePermissions entry names file, line and key', async (t) => {
  const cases: [string, number, RegExp][] = [
    ['grants:\n  sensitivePermissions: users\n', 2, /sensitivePermissions: must be a list \(got "users"\)/],
    ['grants:\n  sensitivePermissions:\n    - { resourceType: users, action: create }\n    - { resourceType: users }\n', 4, /sensitivePermissions\.1: missing required key "action"/],
    ['grants:\n  sensitivePermissions:\n    - { resourceType: "", action: create }\n', 3, /sensitivePermissions\.0\.resourceType: must be a resource type, or "\*" for any \(got ""\)/],
    ['grants:\n  sensitivePermissions:\n    - users.create\n', 3, /sensitivePermissions\.0: must be a mapping \(got "users\.create"\)/],
    ['grants:\n  sensitivePermissions:\n    -\n', 3, /sensitivePermissions\.0: must be a mapping \(got nothing\)/],
    ['grants:\n  sensitivePermissions:\n    - resourceType: users\n      action: create\n      tenant: acme\n', 5, /sensitivePermissions\.0\.tenant: unknown key "tenant" \(expected one of resourceType, action\)/],
    ['grants:\n  sensitivePermissions:\n    - { resourceType: users, action: 7 }\n', 3, /sensitivePermissions\.0\.action: must be a string \(got 7\)/],
    ['grants:\n  sensitiveRoles: [admin, 3]\n', 2, /sensitiveRoles\.1: must be a string \(got 3\)/],
  ]
  for (const [text, line, pattern] of cases) {
    t.throws(() => parseIdentityPolicy(text), { message: new RegExp(`^identity\\.yaml:${line}: grants\\..*${pattern.source}`) }, `${pattern}: line ${line}`)
  }
})
