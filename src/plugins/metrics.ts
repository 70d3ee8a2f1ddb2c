import fp from 'fastify-plugin'
import { createPrometheusMetrics, type PrometheusMetrics } from '../metrics/prometheus.js'
import { PACKAGE_VERSION } from '../package-info.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: PrometheusMetrics
  }
}

/** Prometheus metrics in the app's own registry, exposed at GET /metrics. */
export default fp(
  async (app) => {
    const metrics = createPrometheusMetrics({ version: PACKAGE_VERSION })
    metrics.watchPolicy(app.policy)
    app.decorate('metrics', metrics)
    // Route patterns and a closed set of methods keep the label sets bounded whatever clients send.
    const known = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched'
      metrics.httpRequest(route, known.has(request.method) ? request.method : 'other', reply.statusCode, reply.elapsedTime / 1000)
      done()
    })
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      reply.header('content-type', metrics.registry.contentType)
      return metrics.registry.metrics()
    })
  },
  { name: 'metrics', dependencies: ['policy'] },
)
