import pino, { type DestinationStream, type Logger } from 'pino'
import type { DecisionLog, DecisionLogEntry } from '../engine/ports.js'

/** Kinds of line in the audit stream; consumers filter on `type`. */
export type AuditType = 'decision' | 'admin' | 'security_event' | 'response_action'

export interface AuditLog extends DecisionLog {
  /** Any other audited fact (an admin change, a security event, an automated response). */
  event(type: Exclude<AuditType, 'decision'>, fields: Record<string, unknown>): void
  close(): Promise<void>
}

export interface AuditLogOptions {
  /** `stdout`, `off`, or a file path to append to. */
  destination: string
  /** Dotted paths into the decision input to replace with "[redacted]", e.g. `subject.attributes.ssn`. */
  redactPaths: readonly string[]
  /** Write here instead (tests). */
  stream?: DestinationStream
}

const REDACTED = '[redacted]'
/**
 * Keys that look like credentials or secret personal data are redacted wherever they appear in a logged
 * request, configured or not. Long, unambiguous terms count anywhere in a key (userPassword, x_api_key,
 * sessionCookie); short ones only as a whole word of it (pin, otp, ssn), so that "pinned", "footprint" or
 * "classname" stay readable.
 */
const SECRET_ANYWHERE = /pass|pwd|secret|token|api[-_]?key|authori[sz]ation|bearer|cookie|credential|private[-_]?key|jwt/i
const SECRET_WORDS: ReadonlySet<string> = new Set(['pin', 'otp', 'ssn', 'cvv', 'cvc', 'totp', 'hotp', 'otpauth'])

/** The words of a key: camelCase, PascalCase, acronyms, digits, snake_case, kebab-case and dots all split. */
const words = (key: string) =>
  key
    .replace(/([a-z\d])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .replace(/([a-zA-Z])(\d)|(\d)([a-zA-Z])/g, '$1$3 $2$4')
    .toLowerCase()
    .split(/[^a-z\d]+/)

function isSecretKey(key: string): boolean {
  return SECRET_ANYWHERE.test(key) || words(key).some((w) => SECRET_WORDS.has(w))
}

function redactCopy(value: unknown, path: string, configured: ReadonlySet<string>, masked: string[]): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((v, i) => redactCopy(v, `${path}.${i}`, configured, masked))
  // No prototype: a key named "__proto__" is copied as a key, not made the copy's prototype.
  const out: Record<string, unknown> = Object.create(null)
  for (const [key, v] of Object.entries(value)) {
    const childPath = path === '' ? key : `${path}.${key}`
    if (configured.has(childPath) || isSecretKey(key)) {
      out[key] = REDACTED
      masked.push(childPath)
    } else {
      out[key] = redactCopy(v, childPath, configured, masked)
    }
  }
  return out
}

/** The stable, versioned shape of a decision line (snake_case, as log pipelines expect). */
export function decisionLine(entry: DecisionLogEntry, redactPaths: ReadonlySet<string>): Record<string, unknown> {
  const { request, decision } = entry
  const masked: string[] = []
  const input = redactCopy(request, '', redactPaths, masked) as Record<string, unknown>
  const line: Record<string, unknown> = {
    type: 'decision',
    v: 1,
    time: new Date(entry.time).toISOString(),
    decision_id: decision.decisionId,
    request_id: entry.requestId,
    trace_id: entry.traceId,
    source: entry.source,
    subject: request.subject?.id ?? null,
    tenant: request.subject?.tenant,
    action: request.action,
    resource: { type: request.resource.type, id: request.resource.id },
    verdict: decision.decision,
    reasons: decision.reasons,
    policy_version: decision.policyVersion,
    latency_ms: Math.round(entry.latencyMs * 1000) / 1000,
    input,
    masked,
  }
  if (decision.risk) {
    line.risk = { score: decision.risk.score, level: decision.risk.level, sensitivity: decision.risk.sensitivity, signals: decision.risk.signals }
  }
  if (decision.stepUp) line.step_up = decision.stepUp
  if (entry.plan) line.plan = entry.plan
  if (entry.shadow) line.shadow = { policy_version: entry.shadow.policyVersion, verdict: entry.shadow.decision, reasons: entry.shadow.reasons }
  return line
}

/**
 * The audit stream: one JSON line per decision, admin action or security event, written through
 * pino off the request path (asynchronous destination). Tokens never enter a line: decisions are
 * logged from the engine's request, which holds the verified subject, not the token.
 */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  if (options.destination === 'off' && !options.stream) {
    return { write() {}, event() {}, async close() {} }
  }
  const destination =
    options.stream ??
    pino.destination({ dest: options.destination === 'stdout' ? 1 : options.destination, sync: false, mkdir: true, append: true })
  const logger: Logger = pino(
    {
      base: null,
      // Lines carry their own `time`: a decision's is the engine's clock, which tests control.
      timestamp: false,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
  const redactPaths = new Set(options.redactPaths)
  return {
    write(make) {
      logger.info(decisionLine(make(), redactPaths))
    },
    event(type, fields) {
      logger.info({ type, v: 1, time: new Date().toISOString(), ...fields })
    },
    async close() {
      const flushable = destination as { flushSync?: () => void; end?: () => void }
      if (!options.stream && typeof flushable.flushSync === 'function') {
        try {
          flushable.flushSync()
        } catch {
          // Nothing buffered or the descriptor is already closed: either way nothing is left to write.
        }
        if (options.destination !== 'stdout') flushable.end?.()
      }
    },
  }
}
