import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, trace, type Attributes, type Context, type Span } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Tracing } from './index.js'
import type { DecisionTracer } from '../engine/ports.js'
import type { TracingSettings } from './settings.js'

// The semantic conventions' closed set of methods; anything else is _OTHER, so a client cannot mint span names.
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'])

/**
 * Spans through a provider and context manager of this app's own, never registered as OpenTelemetry's globals: the
 * PDP is the only thing it traces, and several apps in one process (tests) keep apart.
 */
export function createOtelTracing(settings: TracingSettings, version: string): Tracing {
  let resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'zt-pdp', [ATTR_SERVICE_VERSION]: version }))
    .merge(detectResources({ detectors: [envDetector] }))
  if (settings.serviceName !== undefined) resource = resource.merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName }))
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.url }))] })
  const tracer = provider.getTracer('zt-pdp', version)
  const contexts = new AsyncLocalStorageContextManager().enable()
  const propagator = new W3CTraceContextPropagator()
  /**
   * Every span's times come from this one monotonic clock. Left to itself, the SDK re-anchors each span to Date.now()
   * (whole milliseconds, and the wall clock drifts from the monotonic one), so a step timed here could appear to start
   * before the request that contains it.
   */
  const clock = () => performance.timeOrigin + performance.now()

  /** The current request's context, or undefined outside a traced request (the CLI, background work). */
  const traced = (): Context | undefined => {
    const active = contexts.active()
    return trace.getSpan(active) ? active : undefined
  }
  /** A span for work the engine has already timed and reported: it ended now and lasted `seconds`. */
  const finished = (name: string, seconds: number, attributes: Attributes, failed = false) => {
    const parent = traced()
    if (!parent) return
    const end = clock()
    const span = tracer.startSpan(name, { startTime: end - seconds * 1000, attributes }, parent)
    if (failed) span.setStatus({ code: SpanStatusCode.ERROR })
    span.end(end)
  }

  const decisionTracer: DecisionTracer = {
    step(name, run) {
      const parent = traced()
      if (!parent) return run()
      const span = tracer.startSpan(`pdp.${name}`, { startTime: clock() }, parent)
      try {
        return contexts.with(trace.setSpan(parent, span), run)
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR })
        throw err
      } finally {
        span.end(clock())
      }
    },
  }

  const plugin = fp(
    async (app) => {
      const spans = new WeakMap<FastifyRequest, Span>()
      const end = (request: FastifyRequest, statusCode: number | undefined) => {
        const span = spans.get(request)
        if (!span) return
        spans.delete(request)
        if (statusCode === undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: 'the client went away' })
        else {
          span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode)
          // Server spans fail on 5xx only: a 4xx is the client's error, answered as designed.
          if (statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
        }
        span.end(clock())
      }
      app.addHook('onRequest', (request, _reply, done) => {
        const parent = propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter)
        const method = METHODS.has(request.method) ? request.method : '_OTHER'
        // The route pattern, never the raw path: bounded names, and no identifiers or credentials from the URL.
        const route = request.routeOptions.url
        const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: method }
        if (route !== undefined) attributes[ATTR_HTTP_ROUTE] = route
        const span = tracer.startSpan(route === undefined ? method : `${method} ${route}`, { kind: SpanKind.SERVER, attributes, startTime: clock() }, parent)
        spans.set(request, span)
        // The request and decision logs carry the span's trace id: the caller's when it sent one, a new one otherwise.
        request.traceId = span.spanContext().traceId
        const context = trace.setSpan(parent, span)
        // The body arrives in events of the connection's async context: bound, its listeners (and so the handler) run in the span's.
        contexts.bind(context, request.raw)
        contexts.with(context, done)
      })
      app.addHook('onResponse', (request, reply, done) => {
        end(request, reply.statusCode)
        done()
      })
      app.addHook('onRequestAbort', (request, done) => {
        end(request, undefined)
        done()
      })
      // Spans still buffered are sent before the process exits.
      app.addHook('onClose', async () => {
        await provider.shutdown()
        contexts.disable()
      })
    },
    { name: 'tracing' },
  )

  const url = new URL(settings.url)
  return {
    target: `${url.protocol}//${url.host}${url.pathname}`,
    plugin,
    observer: {
      decision: (o) => {
        const attributes: Attributes = { 'pdp.decision': o.verdict, 'pdp.reason': o.reason }
        if (o.riskScore !== undefined) attributes['pdp.risk_score'] = o.riskScore
        if (o.stepUpLevel !== undefined) attributes['pdp.step_up_level'] = o.stepUpLevel
        finished('pdp.decide', o.seconds, attributes)
      },
      storeCall: (seconds, ok) => finished('pdp.store', seconds, { 'pdp.store.ok': ok }, !ok),
    },
    decisionTracer,
  }
}
