import Fastify, { LogController, type FastifyError, type FastifyReply, type FastifyRequest, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import { stdTimeFunctions, type DestinationStream } from 'pino'
import type { GeoLookup } from './engine/risk/geo.js'
import type { Clock } from './engine/types.js'
import { ERRORS, PdpHttpError } from './errors.js'
import { errorBody, toErrorBody } from './http/error-mapping.js'
import { PACKAGE_VERSION } from './package-info.js'
import callerAuthPlugin, { type CallerAuthOptions } from './plugins/caller-auth.js'
import identityPlugin from './plugins/identity.js'
import type { TokenVerifierOptions } from './identity/token-verifier.js'
import { ConfigError, type Config } from './config/config.js'
import auditPlugin, { type AuditPluginOptions } from './plugins/audit.js'
import metricsPlugin from './plugins/metrics.js'
import openapiPlugin from './plugins/openapi.js'
import pdpPlugin from './plugins/pdp.js'
import responsePlugin, { type ResponsePluginOptions } from './plugins/response.js'
import rateLimit from '@fastify/rate-limit'
import { createGeoipLookup } from './engine/risk/geo.js'
import { stateStoreRateLimit } from './store/rate-limit-store.js'
import eventRoutes from './routes/events.js'
import responseRoutes from './routes/admin/response.js'
import storePlugin from './plugins/store.js'
import policyPlugin from './plugins/policy.js'
import identityRoutes from './routes/admin/identity.js'
import authzRoutes, { isForwardAuthTarget, refuseUnroutable, unparseableAnswer } from './routes/authz.js'
import adminPolicyRoutes from './routes/admin/policy.js'
import decideRoutes from './routes/decide.js'
import healthRoutes from './routes/health.js'
import explorerPage from './explorer/page.js'
import explorerRoutes from './explorer/routes.js'
import planRoutes from './routes/plan.js'
import { checkBody } from './schemas/body-guard.js'
import { traceIdOf } from './http/trace-context.js'
import type { Tracing } from './tracing/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    lifecycle: { draining: boolean }
  }
  interface FastifyRequest {
    /** The trace id of a valid W3C `traceparent` header, carried into the request log and the decision log. */
    traceId: string | undefined
  }
}

export interface AppOptions {
  config: Config
  /** Clock for every time-dependent decision; tests pass a controllable one. */
  now?: Clock
  /** Fastify logger options; false in tests. Defaults to JSON lines at the configured level. */
  logger?: FastifyServerOptions['logger']
  /** IP geolocation; geoip-lite's database by default. */
  geo?: GeoLookup
  /** Audit lines go here instead of PDP_DECISION_LOG (tests). */
  auditStream?: DestinationStream
  /** Reload when policy files change (the server does; most tests do not). */
  watchPolicies?: boolean
  /** First retry delay of webhook deliveries (tests shorten it). */
  webhookBackoffMs?: number
  /**
   * Decide on the policy files alone: the engine gets no state store, so the identity gates, the response
   * gate and the risk engine never run. Only for measuring the policy's own cost (scripts/bench); a
   * service built this way ignores revocations, lockouts and risk.
   */
  policyOnly?: boolean
  /** OpenTelemetry tracing (startTracing), when the OTEL_* variables ask for it. */
  tracing?: Tracing
  /** Where the explorer page's compiled scripts are (dist/ui by default). */
  explorerAssetsDir?: string
}

/** Headers whose values are credentials; pino replaces them before a line is written. */
export const REDACTED_PATHS = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-pdp-admin-token"]']

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

/**
 * A URL the router cannot take apart (percent-encoding that is not UTF-8, such as %ED%A0%80 or %FF; an overlong
 * parameter): a catalogue 400 like any other bad input, and on forward-auth endpoints their 403.
 */
function onUnroutable(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (isForwardAuthTarget(request.url)) return refuseUnroutable(reply)
  reply.status(400).send(errorBody('VALIDATION', error.code === 'FST_ERR_BAD_URL' ? 'the path is not valid percent-encoded UTF-8' : 'a path parameter is too long', '/'))
}

const CLIENT_ERRORS: Record<string, [number, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
}

/** Bytes Node's HTTP parser refused (oversized headers, garbage, a client too slow): answered before any route runs. */
function onClientError(error: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  if (socket.writable) {
    const [status, title] = CLIENT_ERRORS[error.code ?? ''] ?? [400, 'Bad Request']
    const body = JSON.stringify({ statusCode: status, code: status === 400 ? ERRORS.VALIDATION.code : undefined, error: title, message: 'the request could not be read' })
    socket.write(unparseableAnswer(Buffer.isBuffer(error.rawPacket) ? error.rawPacket : undefined) ?? `HTTP/1.1 ${status} ${title}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }
  socket.destroy(error)
}

const QUIETER_THAN_INFO = new Set(['warn', 'error', 'fatal', 'silent'])

/** One line per request, written when it completes; the path without its query string, which may carry credentials. */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (!error && QUIETER_THAN_INFO.has(reply.log.level)) return
    const line = {
      method: request.method,
      path: request.url.split('?')[0],
      statusCode: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100,
      trace_id: request.traceId,
    }
    if (error) reply.log.error({ ...line, err: error }, 'request failed')
    else reply.log.info(line, 'request')
  }
}

/** Token verification is configured by an issuer, an audience and one key source, or not at all. */
function verifierOptions(config: Config, now: Clock): { verifier?: TokenVerifierOptions } {
  const { issuer, audience, jwksFile, jwksUrl } = config
  if (issuer === undefined && audience === undefined && jwksFile === undefined && jwksUrl === undefined) return {}
  if (issuer === undefined) throw new ConfigError('PDP_ISSUER', 'is required when token verification is configured')
  if (audience === undefined) throw new ConfigError('PDP_AUDIENCE', 'is required when PDP_ISSUER is set')
  if ((jwksFile === undefined) === (jwksUrl === undefined)) throw new ConfigError('PDP_JWKS_FILE', 'set exactly one of PDP_JWKS_FILE and PDP_JWKS_URL')
  const verifier: TokenVerifierOptions = {
    issuer,
    audience,
    algorithms: config.jwtAlgorithms,
    clockToleranceSec: config.jwtClockToleranceSec,
    maxLifetimeSec: config.jwtMaxLifetimeSec,
    rolesClaim: config.jwtRolesClaim,
    tenantClaim: config.jwtTenantClaim,
    ...(config.jwtDeviceClaim !== undefined ? { deviceClaim: config.jwtDeviceClaim } : {}),
    now,
  }
  if (jwksFile !== undefined) verifier.jwksFile = jwksFile
  if (jwksUrl !== undefined) {
    verifier.jwksUrl = jwksUrl
    verifier.jwksTimeoutMs = config.jwksTimeoutMs
    verifier.jwksMaxBytes = config.jwksMaxBytes
    verifier.jwksFailureBackoffMs = config.jwksFailureBackoffMs
  }
  return { verifier }
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options
  const now = options.now ?? Date.now
  const app = Fastify({
    // One schema for every stdout line, the audit lines' own: string level, ISO time, request_id.
    logger: options.logger ?? {
      level: config.logLevel,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: stdTimeFunctions.isoTime,
    },
    bodyLimit: config.bodyLimit,
    // Every wait on a client is bounded: a client that trickles its headers or body, or idles, loses the connection.
    connectionTimeout: config.httpConnectionTimeoutMs,
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
    requestTimeout: config.httpRequestTimeoutMs,
    http: {
      // Also here, because Node checks the headers time-out against it when the server is created.
      requestTimeout: config.httpRequestTimeoutMs,
      headersTimeout: config.httpHeadersTimeoutMs,
      // Node checks the headers and request time-outs on this interval (30 s by default), so it bounds how late they act.
      connectionsCheckingInterval: Math.max(50, Math.min(config.httpHeadersTimeoutMs, config.httpRequestTimeoutMs) / 4),
    },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    logController: new OneLinePerRequest({ requestIdLogLabel: 'request_id' }),
    return503OnClosing: true,
    frameworkErrors: onUnroutable,
    clientErrorHandler: onClientError,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>()

  // Set when the process is told to stop: readiness fails first, so load balancers stop sending, while requests are still served.
  app.decorate('lifecycle', { draining: false })

  // Every body the PDP accepts is JSON; without this, Fastify's default text parser would hand strings to the routes.
  app.removeContentTypeParser('text/plain')

  // Callback hooks: they run on every request, and an async hook costs a promise each time.
  app.decorateRequest('traceId', undefined)
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    request.traceId = traceIdOf(request.headers.traceparent)
    done()
  })
  app.addHook('preValidation', (request, _reply, done) => {
    const problem = request.body !== null && typeof request.body === 'object' ? checkBody(request.body) : undefined
    done(problem ? new PdpHttpError('VALIDATION', `${problem.field} ${problem.message}`, problem.field) : undefined)
  })

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const body = toErrorBody(error)
    if (body.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    reply.status(body.statusCode).send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(errorBody('NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`))
  })

  const policyOptions = options.watchPolicies
    ? { watch: { debounceMs: config.reloadDebounceMs, settleMs: config.reloadSettleMs, pollMs: config.reloadPollMs } }
    : {}
  await app.register(policyPlugin, {
    dir: config.policyDir,
    now,
    ...policyOptions,
    ...(config.shadowPolicyDir !== undefined ? { shadowDir: config.shadowPolicyDir } : {}),
  })
  const auditOptions: AuditPluginOptions = { destination: config.decisionLog, redactPaths: config.decisionLogRedact }
  if (options.auditStream) auditOptions.stream = options.auditStream
  await app.register(auditPlugin, auditOptions)
  await app.register(metricsPlugin, {
    ...(config.metricsPort !== undefined ? { port: config.metricsPort, host: config.host } : {}),
    ...(options.tracing ? { observer: options.tracing.observer } : {}),
  })
  if (options.tracing) await app.register(options.tracing.plugin)
  const storeOptions: Parameters<typeof storePlugin>[1] = {
    prefix: config.redisPrefix,
    timeoutMs: config.storeTimeoutMs,
    maxKeys: config.storeMaxKeys,
    maxBytes: config.storeMaxBytes,
    now,
  }
  if (config.redisUrl !== undefined) storeOptions.redisUrl = config.redisUrl
  if (config.redisSentinels !== undefined) {
    storeOptions.sentinels = config.redisSentinels
    storeOptions.sentinelMaster = config.redisSentinelMaster
  }
  if (config.redisClusterNodes !== undefined) storeOptions.clusterNodes = config.redisClusterNodes
  await app.register(storePlugin, storeOptions)
  await app.register(identityPlugin, verifierOptions(config, now))
  const geo = options.geo ?? createGeoipLookup({ dataDir: config.geoipDataDir })
  const responseOptions: ResponsePluginOptions = { now, geo }
  if (config.webhookUrl !== undefined && config.webhookSecret !== undefined) {
    responseOptions.webhook = { url: config.webhookUrl, secret: config.webhookSecret, timeoutMs: config.webhookTimeoutMs, retries: config.webhookRetries }
    if (options.webhookBackoffMs !== undefined) responseOptions.webhook.backoffMs = options.webhookBackoffMs
  }
  await app.register(responsePlugin, responseOptions)
  await app.register(pdpPlugin, {
    now,
    defaultTenant: config.defaultTenant,
    turnBudgetMs: config.turnBudgetMs,
    storeFailure: config.storeFailure,
    geo,
    policyOnly: options.policyOnly === true,
    ...(options.tracing ? { tracer: options.tracing.decisionTracer } : {}),
  })
  await app.register(openapiPlugin, { version: PACKAGE_VERSION })
  const callerOptions: CallerAuthOptions = {
    store: app.store,
    now,
    trustedProxies: config.trustedProxies,
    failureLimit: config.authFailureLimit,
    failureWindowMs: config.authFailureWindowSec * 1000,
  }
  if (config.adminToken !== undefined) callerOptions.adminToken = config.adminToken
  if (app.tokenVerifier) callerOptions.verifier = app.tokenVerifier
  await app.register(callerAuthPlugin, callerOptions)
  await app.register(healthRoutes)
  await app.register(decideRoutes, { batchMax: config.batchMax, auth: config.decideAuth })
  await app.register(planRoutes, { auth: config.decideAuth })
  // The control plane, rate limited per caller (shared through Redis when replicas share one).
  await app.register(async (plane) => {
    await plane.register(rateLimit, {
      global: true,
      max: config.rateLimitAdmin,
      timeWindow: 60_000,
      // After authentication, so that the limit is per caller rather than per address.
      hook: 'preHandler',
      keyGenerator: (request) => (request.caller ? `caller:${request.caller.id}` : `ip:${request.ip}`),
      // A Redis hiccup must not shut the control plane; authentication still applies.
      skipOnError: true,
      // On Redis, counted through the state store so that a count waits no longer than PDP_STORE_TIMEOUT_MS.
      ...(app.store.kind === 'redis' ? { store: stateStoreRateLimit(app.store, 'ratelimit:') } : {}),
    })
    await plane.register(adminPolicyRoutes)
    await plane.register(identityRoutes, { now, maxTokenLifetimeSec: config.jwtMaxLifetimeSec })
    await plane.register(responseRoutes, { now })
    await plane.register(eventRoutes, { now, rateLimit: config.rateLimitEvents })
    await plane.register(explorerRoutes, {
      now,
      geo,
      defaultTenant: config.defaultTenant,
      storeFailure: config.storeFailure,
      redactPaths: config.decisionLogRedact,
      ringSize: config.explorerRing,
      streamMax: config.explorerStreamMax,
      heartbeatMs: config.explorerHeartbeatMs,
      editMaxBytes: config.explorerEditMaxBytes,
      statsMinutes: config.explorerStatsMinutes,
    })
  })
  await app.register(explorerPage, options.explorerAssetsDir === undefined ? {} : { assetsDir: options.explorerAssetsDir })
  await app.register(authzRoutes, { trustedProxies: config.trustedProxies, deviceHeader: config.deviceHeaderTrusted === 'true' ? config.deviceHeader : undefined })
  return app
}
