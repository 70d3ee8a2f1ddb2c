import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateOpenApi } from '../scripts/openapi.js'
import { ROOT, build } from './helpers/build.js'

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
  for (const path of ['/authz', '/authz/forward', '/authz/envoy/*'].map((p) => doc.paths[p] ?? doc.paths[p.replace('*', '{*}')])) {
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
