import t from 'tap'
import { createConfig, lintFromString } from '@redocly/openapi-core'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateOpenApi } from '../scripts/openapi.js'
import { CALLER, ROOT, build } from './helpers/build.js'

t.test('openapi/openapi.json is current', async (t) => {
  const committed = await readFile(join(ROOT, 'openapi/openapi.json'), 'utf8')
  const generated = await generateOpenApi()
  t.ok(committed === generated, 'openapi/openapi.json is stale: run `npm run openapi` and commit the result')
})

t.test('the document covers the routes and their answers', async (t) => {
  const app = await build(t)
  const res = await app.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.equal(doc.openapi, '3.1.0')
  t.same(Object.keys(doc.paths['/decide'].post.responses).sort(), ['200', '400', '401', '403', '413', '415'])
  t.same(Object.keys(doc.paths['/decide/batch'].post.responses).sort(), ['200', '400', '401', '403', '413', '415'])
  for (const path of ['/authz', '/authz/forward', '/authz/envoy/{path}'].map((p) => doc.paths[p])) {
    t.same(Object.keys(path.get.responses).sort(), ['200', '401', '403'], 'forward-auth answers only 200, 401 and 403')
    t.ok(path.get.responses['200'].headers['X-Pdp-Decision-Id'], 'the allow documents its headers')
    t.ok(path.get.responses['401'].headers['WWW-Authenticate'], 'the 401 documents its challenge')
  }
  t.ok(doc.paths['/healthz'].get)
  t.ok(doc.paths['/readyz'].get)
  t.notOk(doc.paths['/openapi.json'], 'the document does not list itself')

  const docs = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /text\/html/)
})

t.test('the document passes Redocly\'s recommended ruleset without errors', async (t) => {
  const config = await createConfig({ extends: ['recommended'] })
  const problems = await lintFromString({ source: await generateOpenApi(), absoluteRef: join(ROOT, 'openapi/openapi.json'), config })
  for (const p of problems.filter((p) => p.severity !== 'error')) t.comment(`${p.severity} ${p.ruleId}: ${p.message} (${p.location[0]?.pointer})`)
  const errors = problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId}: ${p.message} (${p.location[0]?.pointer})`)
  t.same(errors, [], 'no lint errors')
})

type Operation = { operationId?: string; security?: Record<string, string[]>[]; parameters?: { name: string; in: string; required?: boolean }[]; requestBody?: unknown }
const operations = (doc: { paths: Record<string, Record<string, Operation>> }) =>
  Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })))

t.test('every operation has a stable camelCase id and declares its security', async (t) => {
  const app = await build(t)
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  t.same(doc.servers, [{ url: '/', description: 'This PDP' }], 'a relative server: the document works under any host name')
  t.match(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' })
  const ops = operations(doc)
  const ids = ops.map(({ op }) => op.operationId)
  t.ok(ids.every((id) => typeof id === 'string' && /^[a-z][a-zA-Z]*$/.test(id)), 'every operation has a camelCase id')
  t.equal(new Set(ids).size, ids.length, 'operation ids are unique')
  t.equal(doc.paths['/decide/batch'].post.operationId, 'decideBatch')
  t.equal(doc.paths['/authz/envoy/{path}'].get.operationId, 'authorizeEnvoyGet')

  for (const { path, method, op } of ops) {
    const where = `${method} ${path}`
    if (path.startsWith('/admin/')) t.same(op.security, [{ bearer: ['pdp:admin'] }], `${where} requires pdp:admin`)
    else if (path === '/events') t.same(op.security, [{ bearer: ['pdp:events'] }], `${where} requires pdp:events`)
    else if (path.startsWith('/decide') || path === '/plan') t.same(op.security, [{}, { bearer: ['pdp:decide'] }], `${where}: pdp:decide optional by default`)
    else if (path.startsWith('/authz')) t.same(op.security, [{}, { subject: [] }], `${where}: the subject's token, optional`)
    else t.same(op.security, [], `${where} is public`)
  }

  const envoy = doc.paths['/authz/envoy/{path}'].get
  t.match(envoy.parameters, [{ name: 'path', in: 'path', required: true, description: /Envoy/ }], 'the Envoy path parameter has a proper name')
  t.notOk(Object.keys(doc.paths).some((p) => p.includes('*')), 'no path parameter is named *')
  const envoyAnswer = await app.inject({ method: 'GET', url: '/authz/envoy/api/documents/d1?x=1' })
  t.equal(envoyAnswer.statusCode, 401, 'the Envoy route itself still answers (no token: authenticate)')
})

t.test('operations that declare a required credential refuse calls without a valid one', async (t) => {
  const app = await build(t, CALLER)
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
  t.same(doc.paths['/decide'].post.security, [{ bearer: ['pdp:decide'] }], 'with PDP_DECIDE_AUTH=token /decide requires pdp:decide')
  const sample: Record<string, string> = { id: 'alice', sid: 'session-1', grantId: 'grant-1', kind: 'lock', ip: '10.0.0.1' }
  const required = operations(doc).filter(({ op }) => op.security?.length && !op.security.some((r) => Object.keys(r).length === 0))
  t.ok(required.length >= 17, 'the admin, events and decide operations are among them')
  for (const { path, method, op } of required) {
    const url = path.replace(/\{(\w+)\}/g, (_, name: string) => sample[name] ?? name)
    const res = await app.inject({ method: method.toUpperCase() as 'GET', url, headers: { authorization: 'Bearer not-a-credential' } })
    // Body validation runs before the credential check on the body-taking routes, so the missing body may be refused first.
    if (op.requestBody) t.ok([400, 401].includes(res.statusCode), `${method} ${path} with a bad credential: ${res.statusCode}`)
    else t.equal(res.statusCode, 401, `${method} ${path} with a bad credential: 401`)
  }
})

t.test('/docs works over plain http under any host name, with only same-origin assets', async (t) => {
  const app = await build(t)
  const host = 'pdp.internal'
  const page = await app.inject({ method: 'GET', url: '/docs/', headers: { host } })
  t.equal(page.statusCode, 200)
  const csp = String(page.headers['content-security-policy'])
  t.notMatch(csp, /upgrade-insecure-requests/, 'no upgrade to https: a PDP served over http keeps loading its assets')
  t.notMatch(csp, /https:|\/\/|\*/, 'no other origins, schemes or wildcards')
  t.match(csp, /default-src 'self'/)
  t.match(csp, /script-src 'self';/)
  t.match(csp, /object-src 'none'/)

  const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '')
  t.ok(refs.length >= 4, 'the page loads its stylesheets and scripts')
  t.notOk(/<script>|<style>|\son\w+=/.test(page.body), 'no inline script or style (the CSP would block it)')
  const base = `http://${host}/docs/`
  for (const ref of [...refs, './json']) {
    const url = new URL(ref, base)
    t.equal(url.origin, `http://${host}`, `${ref} is same-origin`)
    const asset = await app.inject({ method: 'GET', url: url.pathname, headers: { host } })
    t.equal(asset.statusCode, 200, `${url.pathname} is served by the PDP`)
  }
  const served = await app.inject({ method: 'GET', url: '/openapi.json', headers: { host } })
  const shown = await app.inject({ method: 'GET', url: '/docs/json', headers: { host } })
  t.same(shown.json(), served.json(), 'the UI shows the same document as /openapi.json (operation ids included, computed once)')
  t.ok(shown.json().components.securitySchemes.bearer, 'with the scheme behind its Authorize button')
  const initializer = await app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js', headers: { host } })
  t.match(initializer.body, /resolveUrl\('\.\/json'\)/, 'the UI fetches the document from the PDP itself')
  t.match(initializer.body, /validatorUrl: null/, 'no call to an outside validator')
})
