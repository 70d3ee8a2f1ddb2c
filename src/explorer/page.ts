import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Type } from 'typebox'
import { PdpHttpError } from '../errors.js'
import { PACKAGE_ROOT } from '../package-info.js'
import { DecideRequestSchema } from '../schemas/decide.js'
import { EXPLORER_CSS } from './style.js'

export interface ExplorerPageOptions {
  /** Where tsc put the page's scripts (dist/ui by default; tests build into a temporary directory). */
  assetsDir?: string
}

/**
 * Everything the page loads comes from the PDP: no inline script or style, no other origin. The token lives in
 * the page's memory; no cookie is set or read, so there is nothing for a form on another site to ride on.
 */
export const EXPLORER_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/** The page before sign-in: the form, and the script that builds the rest once the credential is accepted. */
const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Decision explorer · zt-pdp</title>
<link rel="stylesheet" href="/ui/assets/explorer.css">
<script type="module" src="/ui/assets/main.js"></script>
</head>
<body>
<header class="top"><h1>Decision explorer</h1><p id="who" class="muted"></p></header>
<main id="main">
<section id="sign-in" aria-labelledby="sign-in-title">
<form id="sign-in-form" class="card narrow">
<h2 id="sign-in-title">Sign in</h2>
<p class="muted">The admin token (PDP_ADMIN_TOKEN) or a JWT with scope pdp:admin. It is kept in this page's memory only: reloading the page signs you out.</p>
<label for="credential">Credential</label>
<input id="credential" name="credential" type="password" autocomplete="off" spellcheck="false" required>
<button type="submit">Sign in</button>
<p id="sign-in-error" class="error" role="alert"></p>
</form>
</section>
</main>
<noscript><p>The decision explorer needs JavaScript.</p></noscript>
</body>
</html>
`

interface Asset {
  body: Buffer
  type: string
  etag: string
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
}

const asset = (body: string | Buffer, type: string): Asset => {
  const buffer = Buffer.isBuffer(body) ? body : Buffer.from(body)
  return { body: buffer, type, etag: `"${createHash('sha256').update(buffer).digest('base64url').slice(0, 22)}"` }
}

/** The compiled scripts, read once: the page is a fixed set of files, so nothing a request names reaches the file system. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>()
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return assets
  }
  for (const name of names) {
    const type = TYPES[name.slice(name.lastIndexOf('.'))]
    if (type !== undefined && /^[a-z0-9-]+\.(js|js\.map)$/.test(name)) assets.set(name, asset(readFileSync(join(dir, name)), type))
  }
  return assets
}

/** GET /ui and its assets: static, served to anyone (they hold no data); every call for data needs pdp:admin. */
const explorerPage: FastifyPluginAsyncTypebox<ExplorerPageOptions> = async (app, opts) => {
  const assets = loadAssets(opts.assetsDir ?? join(PACKAGE_ROOT, 'dist', 'ui'))
  assets.set('explorer.css', asset(EXPLORER_CSS, TYPES['.css']!))
  // The /decide body schema, so that the page checks a composed request against the very schema the route uses.
  assets.set('decide-schema.json', asset(JSON.stringify(DecideRequestSchema), TYPES['.json']!))
  const shell = asset(SHELL, TYPES['.html']!)

  const send = (reply: FastifyReply, file: Asset, ifNoneMatch: string | undefined) => {
    reply
      .header('content-security-policy', EXPLORER_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-resource-policy', 'same-origin')
      // Revalidated on every load (cheap: a 304), so that a new release is picked up at once.
      .header('cache-control', 'no-cache')
      .header('etag', file.etag)
    if (ifNoneMatch === file.etag) return reply.status(304).send()
    return reply.type(file.type).send(file.body)
  }

  const page = { schema: { hide: true } }
  for (const url of ['/ui', '/ui/']) {
    app.get(url, page, async (request, reply) => {
      if (!assets.has('main.js')) throw new PdpHttpError('NOT_READY', 'the explorer page was not built: run npm run build')
      return send(reply, shell, request.headers['if-none-match'])
    })
  }
  app.get('/ui/assets/:name', { schema: { hide: true, params: Type.Object({ name: Type.String({ maxLength: 64 }) }) } }, async (request, reply) => {
    const file = assets.get(request.params.name)
    if (!file) throw new PdpHttpError('NOT_FOUND', `no asset ${request.params.name}`)
    return send(reply, file, request.headers['if-none-match'])
  })
}

export default explorerPage
