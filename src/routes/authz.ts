import http from 'node:http'
import type { SwaggerTransform } from '@fastify/swagger'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { DecisionInput } from '../engine/pdp.js'
import { UnsafePathError, pathSegments } from '../engine/route-map.js'
import type { Decision, ReasonCode } from '../engine/types.js'
import { CREDENTIAL_REASONS, invalidTokenChallenge, stepUpChallenge } from '../http/challenge.js'
import { TrustedProxies, clientIp } from '../http/client-ip.js'
import { isIdentifier } from '../engine/identifiers.js'
import { SUBJECT_TOKEN } from '../schemas/security.js'
import { bearerToken } from '../http/bearer.js'

export interface AuthzRoutesOptions {
  trustedProxies: readonly string[]
  /**
   * The header the gateway sets from an authenticated source (an mTLS client certificate hash), believed only from
   * a trusted proxy; undefined means no header names the device (a client could name someone else's).
   */
  deviceHeader: string | undefined
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
/** CONNECT never reaches a route: Node hands it to the server's 'connect' event. */
const METHODS_NODE_PARSES = http.METHODS.filter((m) => m !== 'CONNECT')

/** Header values come from tokens and policies: anything outside visible ASCII is percent-encoded. */
const headerSafe = (value: string) => value.replace(/[^\x20-\x7e]|%/g, (c) => encodeURIComponent(c))

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

interface Original {
  method: string
  uri: string
}

/** Which gateway's dialect an endpoint speaks: each endpoint believes only the headers its gateway sets. */
type Dialect = 'nginx' | 'forward' | 'envoy'

export const ENVOY_PREFIX = '/authz/envoy'

/** The only headers each header-speaking dialect reads the original request from. */
const ORIGINAL_HEADERS = {
  nginx: ['x-original-method', 'x-original-uri'],
  forward: ['x-forwarded-method', 'x-forwarded-uri'],
} as const

/** Headers some upstreams honour to run another method than the request line's; the PDP would decide the wrong one. */
const METHOD_OVERRIDES = ['x-http-method-override', 'x-http-method', 'x-method-override']

/**
 * The original request as the gateway describes it. NGINX's auth subrequest is always a GET and Traefik's
 * and Caddy's are too, so their original method must come from the header: a missing one is no request.
 * Envoy keeps the method and puts the raw path after its prefix; it is read from the raw URL, never from
 * the router's decoded parameter, so that it is decoded exactly once, segment by segment.
 */
function originalOf(request: FastifyRequest, dialect: Dialect): Original | undefined {
  if (dialect === 'envoy') return { method: request.method, uri: request.url.slice(ENVOY_PREFIX.length) }
  const [methodHeader, uriHeader] = ORIGINAL_HEADERS[dialect]
  const method = single(request.headers[methodHeader])
  const uri = single(request.headers[uriHeader])
  return method === undefined || uri === undefined ? undefined : { method, uri }
}

/** Whether a request target is one of the forward-auth endpoints, whose every answer must be 200, 401 or 403. */
export function isForwardAuthTarget(target: string): boolean {
  return /^\/authz(?:[/?]|$)/.test(target)
}

const BAD_REQUEST_BODY = JSON.stringify({ decision: 'deny', reasons: ['bad_request'] })

/** The answer to a forward-auth request the router could not even route (an undecodable URL, an overlong parameter). */
export function refuseUnroutable(reply: FastifyReply): void {
  reply.status(403).header('x-pdp-decision', 'deny').header('x-pdp-reason', 'bad_request').type('application/json').send(BAD_REQUEST_BODY)
}

/**
 * The raw answer to a forward-auth request Node's parser gave up on (headers over the size limit, say),
 * or undefined when the bytes are not a forward-auth request: the caller answers those as usual.
 */
export function unparseableAnswer(rawPacket: Buffer | undefined): string | undefined {
  const line = rawPacket?.subarray(0, 512).toString('latin1').split('\r\n', 1)[0] ?? ''
  const target = /^[A-Z]+ (\S+)/.exec(line)?.[1]
  if (target === undefined || !isForwardAuthTarget(target)) return undefined
  return (
    'HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Type: application/json\r\nX-Pdp-Decision: deny\r\nX-Pdp-Reason: bad_request\r\n' +
    `Content-Length: ${BAD_REQUEST_BODY.length}\r\n\r\n${BAD_REQUEST_BODY}`
  )
}

function bearer(request: FastifyRequest): string | undefined {
  return bearerToken(single(request.headers.authorization))
}

/** What a gateway's forward-auth call receives for a decision: status, headers and body. */
export interface ForwardAuthAnswer {
  status: 200 | 401 | 403
  headers: Record<string, string>
  body: { decision: Decision['decision']; reasons: Decision['reasons']; decisionId: string; stepUp?: Decision['stepUp'] }
}

/**
 * The one translation of a decision into a forward-auth answer: allow is 200, a step-up 401 with the RFC 9470
 * challenge, a bad credential 401 invalid_token, anything else 403. The decision explorer shows the same.
 */
export function forwardAuthAnswer(decision: Decision): ForwardAuthAnswer {
  const headers: Record<string, string> = { 'x-pdp-decision-id': decision.decisionId, 'x-pdp-decision': decision.decision }
  const reason = decision.reasons[0] ?? 'no_matching_policy'
  const body: ForwardAuthAnswer['body'] = { decision: decision.decision, reasons: decision.reasons, decisionId: decision.decisionId }
  if (decision.decision === 'allow') {
    if (decision.subject) {
      headers['x-pdp-subject'] = headerSafe(decision.subject.id)
      if (decision.subject.tenant !== undefined) headers['x-pdp-tenant'] = headerSafe(decision.subject.tenant)
    }
    return { status: 200, headers, body }
  }
  headers['x-pdp-reason'] = reason
  if (decision.decision === 'step_up' && decision.stepUp) {
    headers['www-authenticate'] = stepUpChallenge(decision.stepUp)
    return { status: 401, headers, body: { ...body, stepUp: decision.stepUp } }
  }
  if (CREDENTIAL_REASONS.has(reason)) {
    headers['www-authenticate'] = invalidTokenChallenge(reason.replace(/_/g, ' '))
    return { status: 401, headers, body }
  }
  return { status: 403, headers, body }
}

/**
 * Forward-auth for NGINX auth_request, Traefik ForwardAuth and Envoy ext_authz (HTTP service).
 * Gateways treat anything but 200, 401 and 403 as an error of their own, so every outcome here,
 * a failure inside the PDP included, is one of those three, with the reason in X-Pdp-Reason.
 */
export default async function authzRoutes(app: FastifyInstance, opts: AuthzRoutesOptions): Promise<void> {
  for (const method of METHODS_NODE_PARSES) if (!app.supportedMethods.includes(method)) app.addHttpMethod(method)
  const trusted = new TrustedProxies(opts.trustedProxies)
  const deviceHeader = opts.deviceHeader?.toLowerCase()

  const refuse = (reply: FastifyReply, status: 401 | 403, reason: ReasonCode | string, extra: Record<string, unknown> = {}) => {
    reply.status(status).header('x-pdp-decision', 'deny').header('x-pdp-reason', reason)
    return { decision: 'deny', reasons: [reason], ...extra }
  }

  const answer = (reply: FastifyReply, decision: Decision) => {
    const { status, headers, body } = forwardAuthAnswer(decision)
    reply.status(status).headers(headers)
    return body
  }

  const handle = async (request: FastifyRequest, reply: FastifyReply, dialect: Dialect) => {
    const original = originalOf(request, dialect)
    if (!original || !(METHODS as readonly string[]).includes(original.method)) return refuse(reply, 403, 'bad_request')
    if (METHOD_OVERRIDES.some((name) => request.headers[name] !== undefined)) return refuse(reply, 403, 'bad_request')
    // One policy revision for the whole request: the route map that named the resource is the one whose policy decides.
    const bundle = app.policy.current
    let target
    try {
      target = bundle.routes.match(original.method, original.uri)
    } catch (err) {
      if (err instanceof UnsafePathError) return refuse(reply, 403, 'bad_request')
      throw err
    }
    if (!target) {
      if (bundle.routes.unmapped === 'allow') {
        reply.header('x-pdp-decision', 'allow').header('x-pdp-reason', 'unmapped_route')
        return { decision: 'allow', reasons: ['unmapped_route'] }
      }
      return refuse(reply, 403, 'unmapped_route')
    }
    const token = bearer(request)
    if (token === undefined) {
      reply.header('www-authenticate', 'Bearer realm="pdp"')
      return refuse(reply, 401, 'token_missing')
    }
    const input: DecisionInput = {
      token,
      action: target.action,
      resource: target.resourceId === undefined ? { type: target.resourceType } : { type: target.resourceType, id: target.resourceId },
      context: { ip: clientIp(request.socket.remoteAddress ?? '', request.headers['x-forwarded-for'], request.headers['x-real-ip'], trusted) },
    }
    const context = input.context!
    // The path as the route map matched it (match has already refused what pathSegments refuses).
    context.http = { method: original.method, path: `/${pathSegments(original.uri).join('/')}` }
    const device = deviceHeader === undefined || !trusted.trusts(request.socket.remoteAddress ?? '') ? undefined : single(request.headers[deviceHeader])
    if (device !== undefined && device !== '' && device.length <= 256 && isIdentifier(device)) context.device = { id: device }
    const agent = single(request.headers['user-agent'])
    if (agent !== undefined) context.userAgent = agent.slice(0, 1024)
    if (target.sensitivity) context.sensitivity = target.sensitivity
    return answer(reply, await app.pdp.decide(input, { requestId: request.id, traceId: request.traceId, source: 'forward_auth', bundle }))
  }

  await app.register(async (scope) => {
    for (const hook of app.decisionTurn) scope.addHook('onRequest', hook)
    // Whatever goes wrong in here (a body that does not parse, a failure inside the PDP) is a 403, never a 5xx.
    scope.setErrorHandler((error, request, reply) => {
      const status = (error as { statusCode?: number }).statusCode ?? 500
      if (status >= 500) request.log.error({ err: error }, 'forward-auth failed; denied')
      reply.status(403).header('x-pdp-decision', 'deny').header('x-pdp-reason', status >= 500 ? 'internal_error' : 'bad_request')
      reply.send({ decision: 'deny', reasons: [status >= 500 ? 'internal_error' : 'bad_request'] })
    })
    scope.removeAllContentTypeParsers()
    // Forward-auth requests carry no body the PDP reads; whatever arrives is drained and ignored.
    scope.addContentTypeParser('*', { bodyLimit: 65_536 }, (_request, payload, done) => {
      payload.resume()
      payload.on('end', () => done(null, undefined))
      payload.on('error', (err) => done(err))
    })
    const header = (description: string) => ({ type: 'string', description })
    const common = {
      'X-Pdp-Decision': header('allow, deny or step_up'),
      'X-Pdp-Decision-Id': header('The decision id (absent when the request never reached the engine)'),
    }
    const answer = (description: string, headers: Record<string, object>) => ({
      description,
      type: 'object',
      properties: {
        decision: { type: 'string' },
        reasons: { type: 'array', items: { type: 'string' } },
        decisionId: { type: 'string' },
        stepUp: { type: 'object', additionalProperties: true },
      },
      headers: { ...common, ...headers },
    })
    const reason = header('The deciding reason code')
    const schema = {
      tags: ['forward-auth'],
      security: SUBJECT_TOKEN,
      response: {
        200: answer('Allowed: forward the request', {
          'X-Pdp-Subject': header('The subject the token named (percent-encoded outside visible ASCII)'),
          'X-Pdp-Tenant': header('The subject\'s tenant'),
        }),
        401: answer('Authenticate (no or bad token) or step up (RFC 9470)', {
          'WWW-Authenticate': header(
            'Bearer error="insufficient_user_authentication" with acr_values and max_age (RFC 9470), Bearer error="invalid_token" (RFC 6750), or Bearer realm="pdp" when no token came',
          ),
          'X-Pdp-Reason': reason,
        }),
        403: answer('Denied; also for unmapped routes, unparseable forwarded requests, store outages and internal failures', { 'X-Pdp-Reason': reason }),
      },
    }
    // The operation ids get the method appended in the document (one route serves every method; see plugins/openapi.ts).
    const endpoints: [string, Dialect, string, string][] = [
      ['/authz', 'nginx', 'authorizeNginx', 'NGINX auth_request (X-Original-Method, X-Original-URI): 200 allow, 401 authenticate or step up, 403 deny'],
      ['/authz/forward', 'forward', 'authorizeForward', 'Traefik ForwardAuth, Caddy forward_auth (X-Forwarded-Method, X-Forwarded-Uri): 200 allow, 401, 403'],
      [`${ENVOY_PREFIX}/*`, 'envoy', 'authorizeEnvoy', 'Envoy ext_authz (HTTP service, path_prefix /authz/envoy): 200 allow, 401, 403'],
    ]
    // Every other method Node can parse is routed here too (undocumented), so that an odd one is our 403 rather than a 404.
    const otherMethods = METHODS_NODE_PARSES.filter((m) => !(METHODS as readonly string[]).includes(m))
    // Fastify names Envoy's wildcard `*`, which is no valid OpenAPI parameter name; the handler reads the raw URL anyway.
    const envoyDoc: SwaggerTransform = ({ schema: routeSchema }) => ({
      url: `${ENVOY_PREFIX}/{path}`,
      schema: {
        ...routeSchema,
        params: {
          type: 'object',
          required: ['path'],
          properties: { path: { type: 'string', description: 'The original request path and query, as Envoy appends it after path_prefix' } },
        },
      },
    })
    for (const [url, dialect, operationId, summary] of endpoints) {
      const handler = (request: FastifyRequest, reply: FastifyReply) => handle(request, reply, dialect)
      const config = dialect === 'envoy' ? { swaggerTransform: envoyDoc } : {}
      scope.route({ method: [...METHODS], url, config, schema: { ...schema, operationId, summary }, handler })
      scope.route({ method: otherMethods, url, schema: { hide: true }, handler })
    }
  })
}
