import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PolicyFileError } from '../../src/engine/policy/policy-files.js'
import { UnsafePathError, pathSegments } from '../../src/engine/route-map.js'
import { parseRouteMap } from '../../src/engine/policy/files/routes.js'
import { EXAMPLE_POLICIES } from '../helpers/build.js'

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
  t.match(map.match('GET', '/api/documents/d-17/'), { resourceId: 'd-17' }, 'one trailing slash maps like the path without it')
  t.match(map.match('GET', '/api/documents/q3%20plan'), { resourceId: 'q3 plan' }, 'a segment is decoded once')
  t.match(map.match('HEAD', '/api/documents/d-17'), { resourceType: 'documents', action: 'read' }, 'HEAD follows GET')
  t.equal(map.match('HEAD', '/api/system/config'), undefined, 'HEAD follows GET only where GET is mapped')
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
  const unsafe = [
    '/api/documents/../users',
    '/api/%2e%2e/users',
    '/api/%2E%2E/users',
    '/api/./x',
    '/api/%2e/x',
    '/api/public/%2e%2e%2fusers',
    '/api/public/..%2f..%2fapi%2fusers',
    '/api/public/..;/users',
    '/api/public/..\\users',
    '/api/public/..%5cusers',
    '/api/public/a%5cb',
    '/api/documents/a%2Fb',
    '/api/documents/a%2fb',
    '/api/documents/d1;x=1',
    '/api/documents/d1%3bx=1',
    '/api//users',
    '//api/users',
    '/api/users//',
    '/api/documents/a%252fb',
    '/api/documents/%2575',
    '/api/%zz',
    '/api/%e2%82',
    'api/no-slash',
    'http://evil.example/api/users',
    '/a/%00',
    '/a/%0d%0aX-Injected:1',
    '/a/\u00e9',
    '/a/b c',
    '/a/b#frag',
    `/a/${'x'.repeat(5000)}`,
    '/api/documents/d1?_method=DELETE',
    '/api/documents/d1?a=1&_METHOD=delete',
    '/api/documents/d1?%5fmethod=DELETE',
  ]
  for (const path of unsafe) {
    t.throws(() => pathSegments(path), { name: 'UnsafePathError' }, path)
    t.ok(catchError(() => pathSegments(path)) instanceof UnsafePathError, `${path}: typed`)
  }
})

t.test('a path that differs from a mapped route only in case is refused, not unmapped', async (t) => {
  const map = parseRouteMap('routes:\n  - { method: GET, path: /api/users/:id, resource: { type: users, id: ":id" }, action: read }\n')
  t.throws(() => map.match('GET', '/API/users/bob'), { name: 'UnsafePathError', message: /only in case/ })
  t.throws(() => map.match('GET', '/api/Users/bob'), { name: 'UnsafePathError' })
  t.match(map.match('GET', '/api/users/Bob'), { resourceId: 'Bob' }, 'parameters keep their case')
  t.equal(map.match('GET', '/api/groups/x'), undefined, 'other paths are merely unmapped')
})

t.test('HEAD takes a route that names it before following GET', async (t) => {
  const map = parseRouteMap(`
routes:
  - { method: GET, path: /files/:id, resource: { type: files, id: ":id" }, action: read }
  - { method: HEAD, path: /files/:id, resource: { type: files, id: ":id" }, action: stat }
  - { path: /misc, resource: { type: misc }, action: any }
`)
  t.match(map.match('HEAD', '/files/f1'), { action: 'stat' }, 'the HEAD route wins though it comes later')
  t.match(map.match('GET', '/files/f1'), { action: 'read' })
  t.match(map.match('HEAD', '/misc'), { action: 'any' }, 'a route for every method takes HEAD too')
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
    ['routes:\n  - { method: FETCH, path: /x, resource: { type: a }, action: read }\n', 'routes.yaml:2', /routes\.0\.method: must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS \(upper or lower case\) \(got "FETCH"\)/],
    ['routes:\n  - method: GET\n    path: x\n    resource: { type: a }\n    action: read\n', 'routes.yaml:3', /routes\.0\.path: must start with \/ \(got "x"\)/],
    ['routes:\n  - method: GET\n    path: /x/:id\n    resource: { type: a, id: ":nope" }\n    action: read\n', 'routes.yaml:4', /:nope is not a parameter/],
    ['routes:\n  - method: GET\n    path: /x\n    resource: { type: a }\n', 'routes.yaml:2', /routes\.0: missing required key "action"/],
    ['routes:\n  - method: GET\n    path: /x/*/y\n    resource: { type: a }\n    action: read\n', 'routes.yaml:3', /only allowed as the last segment/],
    ['routes:\n  - method: GET\n    path: /x\n    resource: { type: a }\n    action: read\n    sensitivity: extreme\n', 'routes.yaml:6', /routes\.0\.sensitivity: must be one of low, medium, high, critical \(got "extreme"\)/],
    ['routes:\n  - method: GET\n    pth: /x\n', 'routes.yaml:3', /routes\.0\.pth: unknown key "pth" \(expected one of method, path, resource, action, sensitivity\)/],
    ['unmaped: deny\n', 'routes.yaml:1', /unmaped: unknown key "unmaped" \(expected one of unmapped, routes\)/],
    ['unmapped: maybe\n', 'routes.yaml:1', /unmapped: must be one of deny, allow \(got "maybe"\)/],
    ['routes: [\n', 'routes.yaml', /not valid YAML/],
    ['routes:\n  - method: GET\n    path: /x/\n    resource: { type: a }\n    action: read\n', 'routes.yaml:3', /empty segment/],
    ['routes:\n  - method: GET\n    path: /x//y\n    resource: { type: a }\n    action: read\n', 'routes.yaml:3', /empty segment/],
    ['routes:\n  - method: GET\n    path: /x/a%2Fb\n    resource: { type: a }\n    action: read\n', 'routes.yaml:3', /can never match/],
    ['routes:\n  - method: GET\n    path: /x/..\n    resource: { type: a }\n    action: read\n', 'routes.yaml:3', /can never match/],
  ]
  for (const [text, where, pattern] of cases) {
    t.throws(() => parseRouteMap(text), PolicyFileError)
    t.throws(() => parseRouteMap(text), { message: new RegExp(`^${where.replace('.', '\\.')}`) }, `${pattern}: located`)
    t.throws(() => parseRouteMap(text), { message: pattern })
  }
})
