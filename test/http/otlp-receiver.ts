import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

interface TestLike {
  teardown(fn: () => unknown): void
}

/** One span as OTLP/HTTP JSON carries it, with its attributes flattened and its resource's service name. */
export interface ReceivedSpan {
  service: string | undefined
  traceId: string
  spanId: string
  parentSpanId: string | undefined
  name: string
  kind: number
  statusCode: number
  start: bigint
  end: bigint
  attributes: Record<string, unknown>
}

interface OtlpValue {
  stringValue?: string
  intValue?: string | number
  boolValue?: boolean
  doubleValue?: number
}
interface OtlpAttribute {
  key: string
  value: OtlpValue
}
interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  status?: { code?: number }
  startTimeUnixNano: string | number
  endTimeUnixNano: string | number
  attributes?: OtlpAttribute[]
}
interface OtlpTraces {
  resourceSpans: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans: { spans: OtlpSpan[] }[] }[]
}

const plain = (v: OtlpValue) => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue))
const flat = (attributes: OtlpAttribute[] = []) => Object.fromEntries(attributes.map((a) => [a.key, plain(a.value)]))

/**
 * A receiver of OTLP/HTTP with JSON bodies (what @opentelemetry/exporter-trace-otlp-http sends), at POST /v1/traces
 * as a collector serves it; anything else gets the collector's 404 or 415.
 */
export async function otlpReceiver(t: TestLike) {
  const spans: ReceivedSpan[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end()
      if (!/^application\/json/.test(req.headers['content-type'] ?? '')) return void res.writeHead(415).end()
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpTraces
      for (const resourceSpans of body.resourceSpans) {
        const service = flat(resourceSpans.resource?.attributes)['service.name']
        for (const scope of resourceSpans.scopeSpans) {
          for (const s of scope.spans) {
            spans.push({
              service: typeof service === 'string' ? service : undefined,
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId || undefined,
              name: s.name,
              kind: s.kind,
              statusCode: s.status?.code ?? 0,
              start: BigInt(s.startTimeUnixNano),
              end: BigInt(s.endTimeUnixNano),
              attributes: flat(s.attributes),
            })
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans }
}

/** OTLP span kinds and status codes as numbers (the JSON encoding of the protobuf enums). */
export const SPAN_KIND_SERVER = 2
export const STATUS_ERROR = 2
