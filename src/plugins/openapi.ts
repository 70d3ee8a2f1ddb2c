import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { SECURITY_SCHEMES } from '../schemas/security.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The OpenAPI document as generated from the route schemas (after ready()). */
    openapiDocument(): Record<string, unknown>
  }
}

export interface OpenApiPluginOptions {
  version: string
}

/**
 * Everything /docs loads comes from the PDP itself. Unlike the plugin's default policy there is no
 * upgrade-insecure-requests, which made browsers fetch the assets over https from a PDP served over plain http
 * (any host name but loopback) and render a blank page, and no https: or validator.swagger.io sources.
 */
const DOCS_CSP: Record<string, string> = {
  'default-src': "'self'",
  'base-uri': "'self'",
  'connect-src': "'self'",
  'font-src': "'self' data:",
  'form-action': "'self'",
  'frame-ancestors': "'self'",
  'img-src': "'self' data:",
  'object-src': "'none'",
  'script-src': "'self'",
  'script-src-attr': "'none'",
  // Swagger UI's bundle renders one inline <style> element; its hash admits that one and no other inline style.
  // test/http/docs-browser.test.ts opens /docs in Chromium and names the new hash if an upgrade changes it.
  'style-src': "'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='",
}

type OpenApiObject = { paths?: object }

/**
 * A route serving several methods shares one operation object among them, so its operationId would repeat
 * (the forward-auth routes answer every method): each method gets its own copy, its id suffixed with the method.
 */
function perMethodOperationIds<D extends OpenApiObject>(document: D): D {
  for (const item of Object.values(document.paths ?? {}) as Record<string, { operationId?: string }>[]) {
    const methodsOf = new Map<object, string[]>()
    for (const [method, operation] of Object.entries(item)) {
      if (typeof operation === 'object' && operation?.operationId) methodsOf.set(operation, [...(methodsOf.get(operation) ?? []), method])
    }
    for (const [operation, methods] of methodsOf) {
      if (methods.length < 2) continue
      const { operationId } = operation as { operationId: string }
      for (const method of methods) {
        item[method] = { ...operation, operationId: `${operationId}${method.charAt(0).toUpperCase()}${method.slice(1)}` }
      }
    }
  }
  return document
}

/**
 * The OpenAPI document is derived from the routes' TypeBox schemas, never written by hand.
 * It must be registered before the routes so that it sees them.
 */
export default fp<OpenApiPluginOptions>(
  async (app, opts) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'zt-pdp',
          description:
            'Policy decision point for zero-trust architectures: Casbin RBAC/ABAC policies plus a risk engine, answering allow, deny or step_up.',
          version: opts.version,
        },
        // Relative: the document is served by the PDP it describes, under whatever host name it is reached by.
        servers: [{ url: '/', description: 'This PDP' }],
        components: { securitySchemes: SECURITY_SCHEMES },
        tags: [
          { name: 'decisions', description: 'Decisions for services and gateways' },
          { name: 'events', description: 'Security events from identity providers (bearer credential with scope pdp:events)' },
          { name: 'health', description: 'Liveness and readiness' },
          { name: 'admin', description: 'Control plane (bearer credential with scope pdp:admin)' },
          { name: 'forward-auth', description: 'Gateway adapters: NGINX auth_request, Traefik ForwardAuth, Envoy ext_authz' },
        ],
      },
      hideUntagged: true,
      transformObject: (document) => ('openapiObject' in document ? perMethodOperationIds(document.openapiObject) : document.swaggerObject),
    })
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: DOCS_CSP })
    app.decorate('openapiDocument', () => app.swagger() as unknown as Record<string, unknown>)
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  },
  { name: 'openapi' },
)
