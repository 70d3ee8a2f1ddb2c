import pino, { type DestinationStream, type Logger } from 'pino'
import type { DecisionLog, DecisionLogEntry } from '../engine/decision-log.js'

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
/** Attribute keys that look like credentials are redacted wherever they appear, configured or not. */
const SECRET_KEY = /(pass(word)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key)/i

function redactCopy(value: unknown, path: string, configured: ReadonlySet<string>, masked: string[]): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((v, i) => redactCopy(v, `${path}.${i}`, configured, masked))
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    const childPath = path === '' ? key : `${path}.${key}`
    if (configured.has(childPath) || SECRET_KEY.test(key)) {
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
