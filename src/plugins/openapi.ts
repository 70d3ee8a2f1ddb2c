import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

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
        tags: [
          { name: 'decisions', description: 'Decisions for services and gateways' },
          { name: 'health', description: 'Liveness and readiness' },
          { name: 'admin', description: 'Control plane (bearer credential with scope pdp:admin)' },
          { name: 'forward-auth', description: 'Gateway adapters: NGINX auth_request, Traefik ForwardAuth, Envoy ext_authz' },
        ],
      },
      hideUntagged: true,
    })
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
    app.decorate('openapiDocument', () => app.swagger() as unknown as Record<string, unknown>)
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  },
  { name: 'openapi' },
)
