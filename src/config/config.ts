/**
 * Process configuration from environment variables, validated once at start.
 * Policy knobs (risk weights, thresholds, rules) live in files under the policy directory instead,
 * because operators edit and hot-reload those; these are the settings of the process itself.
 */

import { isAbsolute } from 'node:path'
import { TrustedProxies } from '../http/client-ip.js'

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`)
    this.name = 'ConfigError'
  }
}

type Parser<T> = (raw: string, name: string) => T

const integer =
  (min: number, max: number): Parser<number> =>
  (raw, name) => {
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got "${raw}"`)
    const value = Number(raw)
    if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
    return value
  }

const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw, name) => {
    if (!(values as string[]).includes(raw)) throw new ConfigError(name, `must be one of ${values.join(', ')}, got "${raw}"`)
    return raw as T
  }

const text: Parser<string> = (raw, name) => {
  if (raw.trim() === '') throw new ConfigError(name, 'must not be empty')
  return raw
}

const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')

const cidrList: Parser<string[]> = (raw, name) => {
  const entries = list(raw, name)
  try {
    new TrustedProxies(entries)
  } catch (err) {
    throw new ConfigError(name, (err as Error).message)
  }
  return entries
}

const hostPorts: Parser<{ host: string; port: number }[]> = (raw, name) =>
  list(raw, name).map((entry) => {
    const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry)
    const port = match ? Number(match[2]) : NaN
    if (!match || port < 1 || port > 65535) throw new ConfigError(name, `"${entry}" is not host:port`)
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port }
  })

const secret =
  (minLength: number): Parser<string> =>
  (raw, name) => {
    // The value is a secret: the message never repeats it.
    if (raw.length < minLength) throw new ConfigError(name, `must be at least ${minLength} characters long`)
    return raw
  }

const absolutePath: Parser<string> = (raw, name) => {
  if (!isAbsolute(raw)) throw new ConfigError(name, `must be an absolute path, got "${raw}"`)
  return raw
}

const url: Parser<string> = (raw, name) => {
  try {
    new URL(raw)
  } catch {
    throw new ConfigError(name, 'must be a URL')
  }
  return raw
}

interface Variable<T> {
  name: string
  default: string | undefined
  parse: Parser<T>
  description: string
}

const variable = <T>(name: string, defaultValue: string | undefined, parse: Parser<T>, description: string): Variable<T> => ({
  name,
  default: defaultValue,
  parse,
  description,
})

/** Every variable the process reads, with its default; the README's table lists the same. */
export const VARIABLES: { [K in keyof Config]: Variable<NonNullable<Config[K]>> } = {
  port: variable('PORT', '8080', integer(0, 65535), 'TCP port to listen on'),
  host: variable('HOST', '127.0.0.1', text, 'Address to bind (0.0.0.0 in containers)'),
  metricsPort: variable(
    'PDP_METRICS_PORT',
    undefined,
    integer(0, 65535),
    'A second listener (on HOST) serving only GET /metrics, so scrapers need no access to the API port; when set, /metrics is not served on PORT',
  ),
  shadowPolicyDir: variable('PDP_SHADOW_POLICY_DIR', undefined, text, 'A candidate policy directory evaluated beside the active one; differences are logged and counted, never returned'),
  policyDir: variable('PDP_POLICY_DIR', './policies', text, 'Directory with model.conf, policy.csv and the other policy files'),
  logLevel: variable('LOG_LEVEL', 'info', oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'), 'pino log level'),
  defaultTenant: variable('PDP_DEFAULT_TENANT', 'default', text, 'Casbin domain for requests that name no tenant'),
  bodyLimit: variable('PDP_BODY_LIMIT', '1048576', integer(1024, 64 * 1024 * 1024), 'Largest accepted request body, bytes (larger → 413)'),
  httpHeadersTimeoutMs: variable('PDP_HTTP_HEADERS_TIMEOUT_MS', '10000', integer(100, 600_000), 'Longest wait for a request\'s headers, from the connection or the previous request (408 and closed past it)'),
  httpRequestTimeoutMs: variable('PDP_HTTP_REQUEST_TIMEOUT_MS', '30000', integer(100, 600_000), 'Longest wait for a whole request, body included (408 and closed past it); at least PDP_HTTP_HEADERS_TIMEOUT_MS'),
  httpKeepAliveTimeoutMs: variable('PDP_HTTP_KEEP_ALIVE_TIMEOUT_MS', '72000', integer(100, 600_000), 'How long an idle keep-alive connection stays open; above the idle time-out of the load balancer in front'),
  httpConnectionTimeoutMs: variable('PDP_HTTP_CONNECTION_TIMEOUT_MS', '90000', integer(100, 3_600_000), 'A connection on which nothing moves for this long is closed'),
  reloadDebounceMs: variable('PDP_RELOAD_DEBOUNCE_MS', '200', integer(0, 60_000), 'Quiet time after a policy file event before the directory is looked at'),
  reloadSettleMs: variable('PDP_RELOAD_SETTLE_MS', '2000', integer(0, 600_000), 'How long every policy file must stay unchanged before a watched change is loaded (0: load as soon as a read is consistent)'),
  reloadPollMs: variable('PDP_RELOAD_POLL_MS', '1000', integer(100, 60_000), 'Interval of the policy directory check that re-watches a replaced directory and catches missed file events'),
  drainDelayMs: variable(
    'PDP_DRAIN_DELAY_MS',
    '0',
    integer(0, 600_000),
    'After SIGTERM/SIGINT, how long /readyz answers 503 while requests are still served, before in-flight ones are finished and the server closes',
  ),
  shutdownTimeoutMs: variable('PDP_SHUTDOWN_TIMEOUT_MS', '10000', integer(100, 600_000), 'Longest wait for in-flight requests on SIGTERM/SIGINT'),
  redisUrl: variable('REDIS_URL', undefined, url, 'Redis for shared state between replicas; unset = embedded in-memory store'),
  redisSentinels: variable('PDP_REDIS_SENTINELS', undefined, hostPorts, 'Redis Sentinel addresses (host:port, comma-separated); REDIS_URL then only gives credentials, database and TLS'),
  redisSentinelMaster: variable('PDP_REDIS_SENTINEL_MASTER', 'mymaster', text, 'Name of the master the sentinels watch'),
  redisClusterNodes: variable(
    'PDP_REDIS_CLUSTER_NODES',
    undefined,
    hostPorts,
    'Redis Cluster nodes to start from (host:port, comma-separated; the others are discovered); REDIS_URL then only gives credentials and TLS',
  ),
  decisionLog: variable('PDP_DECISION_LOG', 'stdout', text, 'Where decision and audit lines go: stdout, off, or a file path'),
  geoipDataDir: variable(
    'GEODATADIR',
    undefined,
    absolutePath,
    "geoip-lite's variable: the directory of its data files (a fresher database than the package's, e.g. from its updatedb script, mounted read-only); an absolute path. Unset: the data in the geoip-lite package",
  ),
  decisionLogRedact: variable('PDP_DECISION_LOG_REDACT', '', list, 'Comma-separated input paths to redact in the decision log, e.g. subject.attributes.salary (credential-like keys are always redacted)'),
  jwksFile: variable('PDP_JWKS_FILE', undefined, text, 'Local JWKS file with the identity provider’s public keys'),
  jwksUrl: variable('PDP_JWKS_URL', undefined, url, 'Remote JWKS URL (cached, with a refetch cool-down)'),
  jwksTimeoutMs: variable('PDP_JWKS_TIMEOUT_MS', '2000', integer(100, 60_000), 'Longest wait for one fetch of PDP_JWKS_URL, body included'),
  jwksMaxBytes: variable('PDP_JWKS_MAX_BYTES', '262144', integer(1024, 16 * 1024 * 1024), 'Largest JWKS body accepted from PDP_JWKS_URL; a larger one is not read further'),
  jwksFailureBackoffMs: variable('PDP_JWKS_FAILURE_BACKOFF_MS', '10000', integer(100, 3_600_000), 'After a failed JWKS fetch, no new fetch for this long (decisions use the last good keys, or fail with token_invalid)'),
  issuer: variable('PDP_ISSUER', undefined, text, 'Required `iss` of tokens'),
  audience: variable('PDP_AUDIENCE', undefined, text, 'Required `aud` of tokens'),
  jwtAlgorithms: variable('PDP_JWT_ALGORITHMS', 'RS256,PS256,ES256,EdDSA', list, 'Accepted signature algorithms (never none, never HMAC)'),
  jwtClockToleranceSec: variable('PDP_JWT_CLOCK_TOLERANCE_S', '30', integer(0, 300), 'Clock skew tolerated on exp/nbf/iat, seconds'),
  jwtMaxLifetimeSec: variable('PDP_JWT_MAX_LIFETIME_S', '900', integer(60, 86_400), 'Longest accepted token lifetime (exp - iat), seconds'),
  jwtRolesClaim: variable('PDP_JWT_ROLES_CLAIM', 'roles', text, 'Dotted claim path of the roles array, e.g. realm_access.roles'),
  jwtTenantClaim: variable('PDP_JWT_TENANT_CLAIM', 'tenant', text, 'Dotted claim path of the tenant'),
  adminToken: variable('PDP_ADMIN_TOKEN', undefined, secret(32), 'Static bearer token for /admin and /events (at least 32 characters)'),
  storeFailure: variable('PDP_STORE_FAILURE', 'closed', oneOf('closed', 'open'), 'When the store fails: closed denies (store_unavailable); open keeps the policy verdict but asks for a step-up'),
  storeTimeoutMs: variable('PDP_STORE_TIMEOUT_MS', '50', integer(1, 10_000), 'Longest wait for one store round trip'),
  redisPrefix: variable('PDP_REDIS_PREFIX', 'pdp:', text, 'Prefix of every Redis key'),
  storeMaxKeys: variable('PDP_STORE_MAX_KEYS', '1000000', integer(1000, 100_000_000), 'Keys the embedded store keeps before evicting the least recently used subjects (each with all of its keys)'),
  storeMaxBytes: variable('PDP_STORE_MAX_BYTES', '100663296', integer(1024 * 1024, 64 * 1024 * 1024 * 1024), 'Approximate heap bytes the embedded store keeps (keys and values with their overhead) before evicting the least recently used subjects (each with all of its keys)'),
  trustedProxies: variable('PDP_TRUSTED_PROXIES', '127.0.0.1/8,::1/128', cidrList, 'Addresses or CIDR ranges of proxies whose X-Forwarded-For / X-Real-IP are believed'),
  deviceHeader: variable('PDP_DEVICE_HEADER', 'x-device-id', text, 'Header carrying the device id on forward-auth requests, when PDP_DEVICE_HEADER_TRUSTED is true'),
  deviceHeaderTrusted: variable(
    'PDP_DEVICE_HEADER_TRUSTED',
    'false',
    oneOf('false', 'true'),
    'true: the gateway sets PDP_DEVICE_HEADER itself from an authenticated source (e.g. the mTLS client certificate hash) and drops any client copy; believed only from PDP_TRUSTED_PROXIES',
  ),
  jwtDeviceClaim: variable('PDP_JWT_DEVICE_CLAIM', undefined, text, 'Dotted claim path of a device id the identity provider puts in tokens; a verified token\'s claim is the decision\'s device'),
  webhookUrl: variable('PDP_WEBHOOK_URL', undefined, url, 'Where notify actions POST their signed JSON (unset: notify does nothing)'),
  webhookSecret: variable('PDP_WEBHOOK_SECRET', undefined, secret(32), 'HMAC-SHA256 key of the webhook signature (at least 32 characters; required with PDP_WEBHOOK_URL)'),
  webhookTimeoutMs: variable('PDP_WEBHOOK_TIMEOUT_MS', '2000', integer(100, 60_000), 'Time-out of one webhook attempt'),
  webhookRetries: variable('PDP_WEBHOOK_RETRIES', '3', integer(0, 10), 'Webhook attempts after the first, with exponential back-off'),
  rateLimitEvents: variable('PDP_RATE_LIMIT_EVENTS', '1200', integer(1, 1_000_000), 'Requests per minute per caller on /events'),
  rateLimitAdmin: variable('PDP_RATE_LIMIT_ADMIN', '120', integer(1, 1_000_000), 'Requests per minute per caller on /admin/*'),
  authFailureLimit: variable('PDP_AUTH_FAILURE_LIMIT', '20', integer(1, 1_000_000), 'Failed authentications per client address and window on /admin/* and /events; past it failures get 429'),
  authFailureWindowSec: variable('PDP_AUTH_FAILURE_WINDOW_S', '60', integer(1, 86_400), 'Length of the window PDP_AUTH_FAILURE_LIMIT counts in, seconds'),
  batchMax: variable('PDP_BATCH_MAX', '100', integer(1, 10_000), 'Most items in one POST /decide/batch (more → 400)'),
  turnBudgetMs: variable(
    'PDP_TURN_BUDGET_MS',
    '1',
    integer(0, 1000),
    'Longest stretch of decisions in one turn of the event loop; later ones wait for the next turn, so time-outs, probes and store replies are served in between under load (0: no limit)',
  ),
  explorerRing: variable(
    'PDP_EXPLORER_RING',
    '100',
    integer(1, 100_000),
    'Recent decisions the explorer (/ui) keeps in memory, to look up by decisionId and to seed its live view; under load, each one kept past a few hundred decisions costs garbage-collection time',
  ),
  explorerStreamMax: variable('PDP_EXPLORER_STREAM_MAX', '8', integer(1, 1000), 'Most live-view event streams open at once (more → 429)'),
  explorerHeartbeatMs: variable('PDP_EXPLORER_HEARTBEAT_MS', '15000', integer(100, 600_000), 'Interval of the comment line that keeps an idle live-view stream open through proxies'),
  explorerEditMaxBytes: variable('PDP_EXPLORER_EDIT_MAX_BYTES', '262144', integer(1024, 16 * 1024 * 1024), 'Largest total size of the policy files a what-if edit replaces, bytes (larger → 400)'),
  explorerStatsMinutes: variable('PDP_EXPLORER_STATS_MINUTES', '15', integer(1, 1440), 'Minutes of decision counts by verdict and reason the explorer keeps'),
  decideAuth: variable('PDP_DECIDE_AUTH', 'none', oneOf('none', 'token'), 'token: /decide also requires a caller credential (scope pdp:decide)'),
}

export interface Config {
  port: number
  host: string
  metricsPort: number | undefined
  policyDir: string
  shadowPolicyDir: string | undefined
  redisSentinels: { host: string; port: number }[] | undefined
  redisSentinelMaster: string
  redisClusterNodes: { host: string; port: number }[] | undefined
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  defaultTenant: string
  bodyLimit: number
  reloadDebounceMs: number
  httpHeadersTimeoutMs: number
  httpRequestTimeoutMs: number
  httpKeepAliveTimeoutMs: number
  httpConnectionTimeoutMs: number
  reloadSettleMs: number
  reloadPollMs: number
  drainDelayMs: number
  shutdownTimeoutMs: number
  redisUrl: string | undefined
  decisionLog: string
  geoipDataDir: string | undefined
  decisionLogRedact: string[]
  jwksFile: string | undefined
  jwksUrl: string | undefined
  jwksTimeoutMs: number
  jwksMaxBytes: number
  jwksFailureBackoffMs: number
  issuer: string | undefined
  audience: string | undefined
  jwtAlgorithms: string[]
  jwtClockToleranceSec: number
  jwtMaxLifetimeSec: number
  jwtRolesClaim: string
  jwtTenantClaim: string
  adminToken: string | undefined
  decideAuth: 'none' | 'token'
  storeFailure: 'closed' | 'open'
  storeTimeoutMs: number
  redisPrefix: string
  storeMaxKeys: number
  storeMaxBytes: number
  trustedProxies: string[]
  deviceHeader: string
  deviceHeaderTrusted: 'false' | 'true'
  jwtDeviceClaim: string | undefined
  batchMax: number
  turnBudgetMs: number
  explorerRing: number
  explorerStreamMax: number
  explorerHeartbeatMs: number
  explorerEditMaxBytes: number
  explorerStatsMinutes: number
  webhookUrl: string | undefined
  webhookSecret: string | undefined
  webhookTimeoutMs: number
  webhookRetries: number
  rateLimitEvents: number
  rateLimitAdmin: number
  authFailureLimit: number
  authFailureWindowSec: number
}

/** Reads and validates every variable; throws ConfigError naming the first bad one. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {}
  for (const [key, spec] of Object.entries(VARIABLES) as [string, Variable<unknown>][]) {
    const raw = env[spec.name]
    if (raw === undefined || raw === '') {
      out[key] = spec.default === undefined ? undefined : spec.parse(spec.default, spec.name)
    } else {
      out[key] = spec.parse(raw, spec.name)
    }
  }
  const config = out as unknown as Config
  // Node refuses a headers time-out longer than the request's: the headers are part of the request.
  if (config.httpHeadersTimeoutMs > config.httpRequestTimeoutMs) throw new ConfigError('PDP_HTTP_HEADERS_TIMEOUT_MS', 'must not exceed PDP_HTTP_REQUEST_TIMEOUT_MS')
  // A webhook nobody can verify would teach receivers to trust unsigned calls.
  if (config.webhookUrl !== undefined && config.webhookSecret === undefined) throw new ConfigError('PDP_WEBHOOK_SECRET', 'is required when PDP_WEBHOOK_URL is set')
  // Port 0 picks a free port for each listener, so only a fixed port can collide.
  if (config.metricsPort !== undefined && config.metricsPort !== 0 && config.metricsPort === config.port) throw new ConfigError('PDP_METRICS_PORT', 'must differ from PORT')
  if (config.redisClusterNodes !== undefined && config.redisSentinels !== undefined) throw new ConfigError('PDP_REDIS_CLUSTER_NODES', 'cannot be used with PDP_REDIS_SENTINELS')
  // Redis Cluster hashes only the first {...} of a key: a brace in the prefix would hide the keys' own hash tags.
  if (config.redisClusterNodes !== undefined && /[{}]/.test(config.redisPrefix)) throw new ConfigError('PDP_REDIS_PREFIX', 'must not contain "{" or "}" with PDP_REDIS_CLUSTER_NODES')
  if (config.redisClusterNodes !== undefined && config.redisUrl !== undefined && !/^\/?(0)?$/.test(new URL(config.redisUrl).pathname)) {
    throw new ConfigError('REDIS_URL', 'must not name a database other than 0 with PDP_REDIS_CLUSTER_NODES: a Redis Cluster has only database 0')
  }
  return config
}
