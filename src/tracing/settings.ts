import { ConfigError } from '../config/config.js'

/** What the OpenTelemetry variables ask for, read without loading any OpenTelemetry module. */
export interface TracingSettings {
  /** The OTLP/HTTP traces URL spans are POSTed to (JSON). */
  url: string
  /** OTEL_SERVICE_NAME, which outranks a service.name in OTEL_RESOURCE_ATTRIBUTES. */
  serviceName?: string
}

const DEFAULT_ENDPOINT = 'http://localhost:4318'

function parsedUrl(raw: string, name: string): URL {
  try {
    return new URL(raw)
  } catch {
    throw new ConfigError(name, 'must be a URL')
  }
}

/**
 * Tracing settings from the OpenTelemetry SDK's standard variables, or undefined when tracing is off.
 *
 * Off unless asked for: the specification makes `otlp` the default exporter, but a PDP that quietly posts to
 * localhost:4318 would be a surprise, so tracing starts only when OTEL_TRACES_EXPORTER=otlp or an OTLP endpoint is
 * set. OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn it off whatever else is set. The exporter speaks
 * OTLP/HTTP with JSON bodies, so a protocol other than http/json is refused rather than sent to the wrong port.
 */
export function tracingSettings(env: NodeJS.ProcessEnv): TracingSettings | undefined {
  const value = (name: string) => {
    const raw = env[name]?.trim()
    return raw === undefined || raw === '' ? undefined : raw
  }
  if (value('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined
  const exporters = (value('OTEL_TRACES_EXPORTER') ?? '').split(',').map((e) => e.trim().toLowerCase()).filter((e) => e !== '')
  if (exporters.includes('none')) return undefined
  const unknown = exporters.filter((e) => e !== 'otlp')
  if (unknown.length > 0) throw new ConfigError('OTEL_TRACES_EXPORTER', `only otlp or none are supported, got "${unknown.join(',')}"`)
  const tracesEndpoint = value('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
  const endpoint = value('OTEL_EXPORTER_OTLP_ENDPOINT')
  if (exporters.length === 0 && tracesEndpoint === undefined && endpoint === undefined) return undefined

  const protocolName = value('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL'
  const protocol = value(protocolName)
  if (protocol !== undefined && protocol !== 'http/json') throw new ConfigError(protocolName, `only http/json is supported, got "${protocol}"`)

  // The specification: the signal's own endpoint is used as it is; the general one gets the signal's path appended.
  let url: string
  if (tracesEndpoint !== undefined) url = parsedUrl(tracesEndpoint, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT').href
  else {
    const base = parsedUrl(endpoint ?? DEFAULT_ENDPOINT, 'OTEL_EXPORTER_OTLP_ENDPOINT').href
    url = `${base.endsWith('/') ? base : `${base}/`}v1/traces`
  }
  const serviceName = value('OTEL_SERVICE_NAME')
  return serviceName === undefined ? { url } : { url, serviceName }
}
