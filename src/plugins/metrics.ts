import Fastify, { LogController, type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { PdpMetrics } from '../engine/ports.js'
import { createPrometheusMetrics, type PrometheusMetrics } from '../metrics/prometheus.js'
import { PACKAGE_VERSION } from '../package-info.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: PrometheusMetrics
    /** The separate metrics listener (PDP_METRICS_PORT), once the app is ready; undefined when /metrics is on the main port. */
    metricsServer: FastifyInstance['server'] | undefined
  }
}

export interface MetricsPluginOptions {
  /** Serve /metrics on a listener of its own at this port (and not on the app's); 0 picks a free one. */
  port?: number
  /** Address of that listener. */
  host?: string
  /** Also told about every decision and store round trip (tracing); the engine reports through the metrics port only. */
  observer?: Pick<PdpMetrics, 'decision' | 'storeCall'>
}

/**
 * The metrics listener: GET /metrics and nothing else, so that a NetworkPolicy can let the monitoring namespaces in
 * on this port without letting them reach /admin. Scrapes are not logged: one line per scrape says nothing.
 */
function metricsListener(metrics: PrometheusMetrics, app: FastifyInstance): FastifyInstance {
  // The API's bounds on stalled and idle connections hold here too (Node's own header and request time-outs apply).
  const { connectionTimeout, keepAliveTimeout } = app.initialConfig
  const listener = Fastify({
    loggerInstance: app.log.child({ listener: 'metrics' }),
    logController: new LogController({ disableRequestLogging: true }),
    ...(connectionTimeout !== undefined ? { connectionTimeout } : {}),
    ...(keepAliveTimeout !== undefined ? { keepAliveTimeout } : {}),
  })
  listener.get('/metrics', async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
  listener.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `only GET /metrics is served on this port, not ${request.method} ${request.url.split('?')[0]}` })
  })
  return listener
}

/** Prometheus metrics in the app's own registry, exposed at GET /metrics (on the app's port, or on PDP_METRICS_PORT). */
export default fp<MetricsPluginOptions>(
  async (app, opts) => {
    const prometheus = createPrometheusMetrics({ version: PACKAGE_VERSION })
    prometheus.watchPolicy(app.policy)
    prometheus.watchDecisionLog(() => app.audit.health())
    const observer = opts.observer
    const metrics: PrometheusMetrics = observer
      ? {
          ...prometheus,
          decision: (observation) => {
            prometheus.decision(observation)
            observer.decision(observation)
          },
          storeCall: (seconds, ok) => {
            prometheus.storeCall(seconds, ok)
            observer.storeCall(seconds, ok)
          },
        }
      : prometheus
    app.decorate('metrics', metrics)
    app.decorate('metricsServer', undefined)
    // Route patterns and a closed set of methods keep the label sets bounded whatever clients send.
    const known = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched'
      metrics.httpRequest(route, known.has(request.method) ? request.method : 'other', reply.statusCode, reply.elapsedTime / 1000)
      done()
    })
    if (opts.port === undefined) {
      app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
        reply.header('content-type', metrics.registry.contentType)
        return metrics.registry.metrics()
      })
      return
    }
    const listener = metricsListener(metrics, app)
    const { port, host = '127.0.0.1' } = opts
    // Opened when the app is ready (before it listens), so a port in use stops the start like the main port would.
    app.addHook('onReady', async () => {
      await listener.listen({ port, host, listenTextResolver: (address) => `metrics listening at ${address}` })
      app.metricsServer = listener.server
    })
    // Closed with the app (drain included): idle keep-alive scrape connections are dropped, in-flight scrapes finish.
    app.addHook('onClose', async () => {
      await listener.close()
    })
  },
  { name: 'metrics', dependencies: ['policy', 'audit'] },
)
