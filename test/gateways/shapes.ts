import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ROOT } from '../helpers/build.js'
import { CLIENT_TIMEOUT_MS, type ClientRequest, type Send } from './corpus.js'
import { headerValues, rawRequest, type HeaderList, type RawResponse } from './net.js'

/*
 * Traefik and Envoy cannot be installed here. Each is played by the documented behaviour of the configuration
 * the example file holds (its header lists, order and time-outs are read from the shipped file), towards the
 * real PDP and the echo upstream, so what is tested is the example.
 */

const lower = (s: string) => s.toLowerCase()
const without = (headers: HeaderList, names: string[]) => headers.filter(([n]) => !names.map(lower).includes(lower(n)))
const set = (headers: HeaderList, name: string, value: string): HeaderList => [...without(headers, [name]), [name, value]]
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']
const CLIENT_IP = '127.0.0.1'

async function toUpstream(upstreamPort: number, request: ClientRequest, headers: HeaderList): Promise<RawResponse> {
  const forwarded: { method: string; target: string; headers: HeaderList; body?: string } = {
    method: request.method,
    target: request.target,
    headers: without(headers, HOP_BY_HOP),
  }
  if (request.body !== undefined) forwarded.body = request.body
  return rawRequest(upstreamPort, forwarded, CLIENT_TIMEOUT_MS)
}

function gatewayAnswer(status: number, headers: HeaderList, ms: number): RawResponse {
  return { status, headers, body: '', ms, timedOut: false }
}

/**
 * Traefik v2/v3: the entry point drops a client's X-Forwarded-* and X-Real-Ip (no forwardedHeaders.trustedIPs)
 * and sets its own; the router's middlewares run in the listed order: `headers.customRequestHeaders` (an empty
 * value deletes), `forwardAuth` (GET to the address with X-Forwarded-Method, -Proto, -Host, -Uri, -For and only
 * authRequestHeaders; a 2xx copies authResponseHeaders onto the request after deleting the client's copies; any
 * other answer goes to the client as it came; an error is a 500; a fixed 30 s client time-out).
 */
export function traefik(ports: { pdp: number; upstream: number }): Send {
  const config = parse(readFileSync(join(ROOT, 'examples/traefik/dynamic.yml'), 'utf8'))
  const router = config.http.routers.api
  const middlewares = (router.middlewares as string[]).map((name) => ({ name, ...config.http.middlewares[name] }))
  return async (request) => {
    const started = performance.now()
    let headers = without(request.headers, [
      'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-port', 'x-forwarded-server',
      'x-forwarded-method', 'x-forwarded-uri', 'x-real-ip',
    ])
    headers = [...headers, ['X-Forwarded-Proto', 'http'], ['X-Forwarded-Host', `127.0.0.1:${ports.upstream}`], ['X-Real-Ip', CLIENT_IP]]
    for (const m of middlewares) {
      if (m.headers) {
        for (const [name, value] of Object.entries(m.headers.customRequestHeaders ?? {}) as [string, string][]) {
          headers = value === '' ? without(headers, [name]) : set(headers, name, value)
        }
      }
      if (m.forwardAuth) {
        const fa = m.forwardAuth
        if (fa.trustForwardHeader !== false) throw new Error('the Traefik example must not trust forwarded headers')
        const address = new URL(fa.address)
        const listed = (fa.authRequestHeaders ?? []) as string[]
        const copied = listed.length === 0 ? without(headers, HOP_BY_HOP) : headers.filter(([n]) => listed.map(lower).includes(lower(n)))
        const check = [
          ...without(copied, ['x-forwarded-method', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-uri', 'x-forwarded-for']),
          ['X-Forwarded-Method', request.method],
          ['X-Forwarded-Proto', 'http'],
          ['X-Forwarded-Host', `127.0.0.1:${ports.upstream}`],
          ['X-Forwarded-Uri', request.target],
          ['X-Forwarded-For', CLIENT_IP],
        ] as HeaderList
        const answer = await rawRequest(ports.pdp, { method: 'GET', target: address.pathname, headers: check }, 30_000)
        if (answer.status === 0) return gatewayAnswer(500, [], performance.now() - started)
        if (answer.status < 200 || answer.status > 299) return { ...answer, ms: performance.now() - started }
        for (const name of fa.authResponseHeaders as string[]) {
          headers = without(headers, [name])
          for (const value of headerValues(answer.headers, name)) headers.push([name, value])
        }
      }
    }
    const res = await toUpstream(ports.upstream, request, [...headers, ['X-Forwarded-For', CLIENT_IP]])
    return { ...res, ms: performance.now() - started }
  }
}

interface Matcher {
  exact?: string
  prefix?: string
  ignore_case?: boolean
}
const matches = (patterns: Matcher[], name: string) =>
  patterns.some((p) => {
    const n = p.ignore_case ? lower(name) : name
    if (p.exact !== undefined) return n === (p.ignore_case ? lower(p.exact) : p.exact)
    if (p.prefix !== undefined) return n.startsWith(p.ignore_case ? lower(p.prefix) : p.prefix)
    return false
  })
const seconds = (text: string) => Number(String(text).replace(/s$/, '')) * 1000
const HTTP_STATUS: Record<string, number> = { Forbidden: 403, ServiceUnavailable: 503, InternalServerError: 500, BadGateway: 502, GatewayTimeout: 504 }

/**
 * Envoy (HTTP/1.1 downstream, header names lower-cased): the connection manager drops header names with an
 * underscore (headers_with_underscores_action: DROP_HEADER) and, at the edge (use_remote_address), appends the
 * peer to X-Forwarded-For and sets X-Forwarded-Proto and a fresh X-Request-Id. The HTTP filters run in order:
 * header_mutation removes request headers; ext_authz (HTTP service) sends the original method with
 * path_prefix + the original path, only allowed_headers plus Host, Method, Path, Content-Length and
 * Authorization; a 200 sets allowed_upstream_headers on the request, replacing copies; any other status goes to
 * the client with allowed_client_headers; an error or time-out answers status_on_error (403 by default).
 */
export function envoy(ports: { pdp: number; upstream: number }): Send {
  const config = parse(readFileSync(join(ROOT, 'examples/envoy/envoy.yaml'), 'utf8'))
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config
  const filters = hcm.http_filters as { name: string; typed_config: Record<string, any> }[]
  return async (request) => {
    const started = performance.now()
    let headers: HeaderList = request.headers.map(([n, v]) => [lower(n), v])
    const underscores = hcm.common_http_protocol_options?.headers_with_underscores_action ?? 'ALLOW'
    if (headers.some(([n]) => n.includes('_'))) {
      if (underscores === 'REJECT_REQUEST') return gatewayAnswer(400, [], performance.now() - started)
      if (underscores === 'DROP_HEADER') headers = headers.filter(([n]) => !n.includes('_'))
    }
    if (hcm.use_remote_address) {
      const xff = headerValues(headers, 'x-forwarded-for').join(',')
      headers = set(headers, 'x-forwarded-for', xff === '' ? CLIENT_IP : `${xff},${CLIENT_IP}`)
      headers = set(headers, 'x-forwarded-proto', 'http')
      headers = set(headers, 'x-request-id', randomUUID())
    }
    for (const filter of filters) {
      const c = filter.typed_config
      if (filter.name === 'envoy.filters.http.header_mutation') {
        for (const m of c.mutations.request_mutations as { remove?: string }[]) if (m.remove) headers = without(headers, [m.remove])
      }
      if (filter.name === 'envoy.filters.http.ext_authz') {
        if (c.failure_mode_allow !== false) throw new Error('the Envoy example must fail closed')
        const service = c.http_service
        const allowed = service.authorization_request.allowed_headers.patterns as Matcher[]
        const check = headers.filter(([n]) => n === 'authorization' || matches(allowed, n))
        const answer = await rawRequest(ports.pdp, { method: request.method, target: `${service.path_prefix}${request.target}`, headers: check }, seconds(service.server_uri.timeout))
        if (answer.status === 0 || answer.timedOut) {
          const code = c.status_on_error?.code
          return gatewayAnswer(code === undefined ? 403 : HTTP_STATUS[code]!, [], performance.now() - started)
        }
        const response = service.authorization_response
        if (answer.status !== 200) {
          const toClient = response.allowed_client_headers.patterns as Matcher[]
          const relayed = answer.headers.filter(([n]) => matches(toClient, n) || ['www-authenticate', 'location'].includes(lower(n)))
          return gatewayAnswer(answer.status, relayed, performance.now() - started)
        }
        for (const [name, value] of answer.headers) {
          if (matches(response.allowed_upstream_headers.patterns as Matcher[], lower(name))) headers = set(headers, lower(name), value)
        }
      }
    }
    const res = await toUpstream(ports.upstream, request, headers)
    return { ...res, ms: performance.now() - started }
  }
}
