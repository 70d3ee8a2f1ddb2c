import type { FastifyPluginAsync } from 'fastify'
import type { PdpMetrics } from '../engine/ports.js'
import type { DecisionTracer } from '../engine/ports.js'
import { tracingSettings } from './settings.js'

/** OpenTelemetry tracing as the app uses it; only exists when the OpenTelemetry variables ask for it. */
export interface Tracing {
  /** Where spans go, without credentials, for the start-up log line. */
  target: string
  /** Hooks giving each HTTP request a server span (continuing an incoming traceparent); flushes spans on close. */
  plugin: FastifyPluginAsync
  /** Told what the engine reports through its metrics port: each decision and store round trip becomes a child span. */
  observer: Pick<PdpMetrics, 'decision' | 'storeCall'>
  /** The engine's steps (policy evaluation, risk assessment) as child spans. */
  decisionTracer: DecisionTracer
}

/**
 * Tracing when OTEL_TRACES_EXPORTER / OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT ask for it, else undefined. The
 * OpenTelemetry modules are imported here and only here, on demand, so that a PDP without tracing never loads them.
 * Settings this reads come from `env`; the SDK reads its own others (OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES) from process.env.
 */
export async function startTracing(env: NodeJS.ProcessEnv, version: string): Promise<Tracing | undefined> {
  const settings = tracingSettings(env)
  if (!settings) return undefined
  const { createOtelTracing } = await import('./otel.js')
  return createOtelTracing(settings, version)
}
