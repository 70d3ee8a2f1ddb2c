import fp from 'fastify-plugin'
import { createPrometheusMetrics, type PrometheusMetrics } from '../metrics/prometheus.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: PrometheusMetrics
  }
}

/** Prometheus metrics in the app's own registry, exposed at GET /metrics. */
export default fp(
  async (app) => {
    const metrics = createPrometheusMetrics()
    metrics.watchPolicy(app.policy)
    app.decorate('metrics', metrics)
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      reply.header('content-type', metrics.registry.contentType)
      return metrics.registry.metrics()
    })
  },
  { name: 'metrics', dependencies: ['policy'] },
)
