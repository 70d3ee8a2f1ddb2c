import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PolicyFileError } from '../../../src/engine/policy/policy-files.js'
import { UnsafePathError, parseRouteMap, pathSegments } from '../../../src/engine/routes/route-map.js'
import { EXAMPLE_POLICIES } from '../../helpers/build.js'

t.test('the bundled route map', async (t) => {
  const map = parseRouteMap(await readFile(join(EXAMPLE_POLICIES, 'routes.yaml'), 'utf8'))
  t.equal(map.unmapped, 'deny')
  t.match(map.match('GET', '/api/documents/d-17'), { resourceType: 'documents', resourceId: 'd-17', action: 'read', source: /^routes\.yaml:\d+$/ })
  t.match(map.match('patch', '/api/documents/d-17?x=1'), { resourceType: 'documents', resourceId: 'd-17', action: 'update' })
  t.match(map.match('DELETE', '/api/users/bob'), { resourceType: 'users', resourceId: 'bob', action: 'delete', sensitivity: 'high' })
  t.match(map.match('GET', '/api/system/logs/2026/03/01'), { resourceType: 'system.logs', action: 'read' })
  t.match(map.match('GET', '/api/system/logs'), { resourceType: 'system.logs' }, 'a trailing * also matches nothing more')
  t.match(map.match('PUT', '/api/system/config'), { resourceType: 'system.config', action: 'update', sensitivity: 'critical' })
  t.equal(map.match('GET', '/api/documents'), undefined, 'no list route')
  t.equal(map.match('GET', '/api/documents/'), undefined, 'an empty parameter does not match')
  t.equal(map.match('POST', '/api/documents/d-17'), undefined, 'method must match')
  t.equal(map.match('GET', '/elsewhere'), undefined)
  t.match(map.match('GET', '/api/documents/a%2Fb'), { resourceId: 'a/b' }, 'an encoded slash stays inside its segment')
})

function catchError(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

t.test('unsafe paths are refused', async (t) => {
  for (const path of ['/api/documents/../users', '/api/%2e%2e/users', '/api/./x', '/api/%zz', 'api/no-slash', '/a/%00']) {
    t.throws(() => pathSegments(path), { name: 'UnsafePathError' }, path)
    t.ok(catchError(() => pathSegments(path)) instanceof UnsafePathError, `${path}: typed`)
  }
})

t.test('first match in file order wins; params fill the id; literals stay', async (t) => {
  const map = parseRouteMap(`
routes:
  - { method: GET, path: /docs/special, resource: { type: special, id: fixed }, action: read }
  - { method: GET, path: /docs/:id, resource: { type: documents, id: ":id" }, action: read }
  - { path: /anything/*, resource: { type: misc }, action: touch }
unmapped: allow
`)
  t.equal(map.unmapped, 'allow')
  t.match(map.match('GET', '/docs/special'), { resourceType: 'special', resourceId: 'fixed' })
  t.match(map.match('GET', '/docs/other'), { resourceType: 'documents', resourceId: 'other' })
  t.match(map.match('OPTIONS', '/anything/a/b'), { resourceType: 'misc', action: 'touch' }, 'no method means every method')
})

t.test('broken route files name file and line', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['routes:\n  - { method: FETCH, path: /x, resource: { type: a }, action: read }\n', 'routes.yaml:2', /method must be one of/],
    ['routes:\n  - method: GET\n    path: x\n    resource: { type: a }\n    action: read\n', 'routes.yaml:3', /path must start with \//],
    ['routes:\n  - method: GET\n    path: /x/:id\n    resource: { type: a, id: ":nope" }\n    action: read\n', 'routes.yaml:4', /:nope is not a parameter/],
    ['routes:\n  - method: GET\n    path: /x\n    resource: { type: a }\n', 'routes.yaml:2', /action must be a non-empty string/],
    ['routes:\n  - method: GET\n    path: /x/*/y\n    resource: { type: a }\n    action: read\n', 'routes.yaml:3', /only allowed as the last segment/],
    ['routes:\n  - method: GET\n    path: /x\n    resource: { type: a }\n    action: read\n    sensitivity: extreme\n', 'routes.yaml:6', /sensitivity must be one of/],
    ['routes:\n  - method: GET\n    pth: /x\n', 'routes.yaml:3', /unknown key "pth"/],
    ['unmaped: deny\n', 'routes.yaml:1', /unknown key "unmaped"/],
    ['unmapped: maybe\n', 'routes.yaml:1', /unmapped must be "deny" or "allow"/],
    ['routes: [\n', 'routes.yaml', /not valid YAML/],
  ]
  for (const [text, where, pattern] of cases) {
    t.throws(() => parseRouteMap(text), PolicyFileError)
    t.throws(() => parseRouteMap(text), { message: new RegExp(`^${where.replace('.', '\\.')}`) }, `${pattern}: located`)
    t.throws(() => parseRouteMap(text), { message: pattern })
  }
})
