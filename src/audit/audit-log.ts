import { EventEmitter } from 'node:events'
import pino, { type DestinationStream, type Logger } from 'pino'
import type { DecisionLog, DecisionLogEntry } from '../engine/ports.js'

/** Kinds of line in the audit stream; consumers filter on `type`. */
export type AuditType = 'decision' | 'admin' | 'security_event' | 'response_action'

/** How the destination is doing, for the metrics: read at scrape time. */
export interface AuditLogHealth {
  /** The last write to the destination failed (a full disk, say); lines wait, and are written once it takes them again. */
  failing: boolean
  /** Failed writes so far. */
  writeErrors: number
  /** Lines dropped so far because the destination fell 64 MiB behind. */
  dropped: number
}

export interface AuditLog extends DecisionLog {
  /** Any other audited fact (an admin change, a security event, an automated response). */
  event(type: Exclude<AuditType, 'decision'>, fields: Record<string, unknown>): void
  health(): AuditLogHealth
  /** Writes what is waiting and closes the destination; resolves once the lines are written. */
  close(): Promise<void>
}

export interface AuditLogOptions {
  /** `stdout`, `off`, or a file path to append to. */
  destination: string
  /** Dotted paths into the decision input to replace with "[redacted]", e.g. `subject.attributes.ssn`. */
  redactPaths: readonly string[]
  /** Write here instead (tests). */
  stream?: DestinationStream
  /** Told how many lines were dropped because the destination fell 64 MiB behind: at the first, and the total at close. */
  onDrop?: (dropped: number) => void
  /** Told when a write fails after the start or a good write: once per outage, not once per retry. */
  onWriteError?: (error: NodeJS.ErrnoException) => void
  /** Told when the destination takes lines again after failing, with the failed writes in between. */
  onRecovered?: (failedWrites: number) => void
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

// Keys repeat from one request to the next (attribute names), so a key's verdict is remembered; only short keys and a
// bounded number of them, because keys are the caller's text.
const SECRET_MEMO_MAX = 4096
const SECRET_MEMO_KEY_LENGTH = 64
const secretMemo = new Map<string, boolean>()

function isSecretKey(key: string): boolean {
  const known = secretMemo.get(key)
  if (known !== undefined) return known
  const secret = SECRET_ANYWHERE.test(key) || words(key).some((w) => SECRET_WORDS.has(w))
  if (key.length <= SECRET_MEMO_KEY_LENGTH && secretMemo.size < SECRET_MEMO_MAX) secretMemo.set(key, secret)
  return secret
}

/** The configured paths, and every path above one of them (below any other, no configured path can match). */
export interface Redaction {
  readonly paths: ReadonlySet<string>
  readonly above: ReadonlySet<string>
}

export function redaction(paths: Iterable<string>): Redaction {
  const set = new Set(paths)
  const above = new Set<string>()
  for (const path of set) for (let i = path.indexOf('.'); i !== -1; i = path.indexOf('.', i + 1)) above.add(path.slice(0, i))
  return { paths: set, above }
}

const hasOwn = Object.prototype.hasOwnProperty

/** A path's text: an object's keys joined by dots, below the root or an empty key without one; an array's indexes always after a dot. */
function pathText(keys: readonly (string | number)[], key: string): string {
  let path = ''
  for (const k of keys) path = typeof k === 'number' ? `${path}.${k}` : path === '' ? k : `${path}.${k}`
  return path === '' ? key : `${path}.${key}`
}

/** Whether the paths below `path` can still be configured ones: '' (the root, or an empty key) always can. */
const leads = (path: string | undefined, rules: Redaction) => (path !== undefined && (path === '' || rules.above.has(path)) ? path : undefined)

/**
 * `value` with the configured paths and secret-looking keys replaced by "[redacted]", each listed in `masked`. Where
 * nothing below a value is replaced, the value itself is returned, not a copy (a line is only read and serialized);
 * an object or array with something replaced below it is copied. `keys` is the path from the request's root, kept as
 * a stack so that a path's text is only built where it is needed: to match a configured path or to list a mask.
 * `path` is that text while it can still lead to a configured path, otherwise undefined.
 */
function redacted(value: unknown, keys: (string | number)[], path: string | undefined, rules: Redaction, masked: string[]): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      keys.push(i)
      const out = redacted(item, keys, leads(path === undefined ? undefined : `${path}.${i}`, rules), rules, masked)
      keys.pop()
      if (copy === undefined && out !== item) copy = value.slice(0, i)
      copy?.push(out)
    }
    return copy ?? value
  }
  // No prototype: a key named "__proto__" is copied as a key, not made the copy's prototype.
  let copy: Record<string, unknown> | undefined
  for (const key in value) {
    if (!hasOwn.call(value, key)) continue
    const item: unknown = (value as Record<string, unknown>)[key]
    const childPath = path === undefined ? undefined : path === '' ? key : `${path}.${key}`
    let out: unknown
    if ((childPath !== undefined && rules.paths.has(childPath)) || isSecretKey(key)) {
      out = REDACTED
      masked.push(pathText(keys, key))
    } else {
      keys.push(key)
      out = redacted(item, keys, leads(childPath, rules), rules, masked)
      keys.pop()
    }
    if (copy === undefined && out !== item) {
      copy = Object.create(null) as Record<string, unknown>
      for (const before in value) {
        if (before === key) break
        if (hasOwn.call(value, before)) copy[before] = (value as Record<string, unknown>)[before]
      }
    }
    if (copy !== undefined) copy[key] = out
  }
  return copy ?? value
}

/** The stable, versioned shape of a decision line (snake_case, as log pipelines expect). */
export function decisionLine(entry: DecisionLogEntry, rules: Redaction): Record<string, unknown> {
  const { request, decision } = entry
  const masked: string[] = []
  const input = redacted(request, [], rules.paths.size === 0 ? undefined : '', rules, masked)
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
 * A file destination writes once at least this much is waiting (and at least every FILE_FLUSH_MS): one system call
 * for several lines instead of one per decision. Standard output writes at once, as the server's own lines do.
 */
const FILE_BATCH_BYTES = 8192
const FILE_FLUSH_MS = 250
/** The most one write hands a file (standard output keeps sonic-boom's 16 KiB): a write in flight drains what waits. */
const FILE_WRITE_BYTES = 1024 * 1024
/** At most this much waits for a slow destination; beyond it lines are dropped (and counted) rather than kept in memory. */
const MAX_PENDING_BYTES = 64 * 1024 * 1024

/**
 * The audit stream: one JSON line per decision, admin action or security event, written off the request path
 * (asynchronous destination). Tokens never enter a line: decisions are logged from the engine's request, which
 * holds the verified subject, not the token.
 */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  if (options.destination === 'off' && !options.stream) {
    return { write() {}, event() {}, health: () => ({ failing: false, writeErrors: 0, dropped: 0 }), async close() {} }
  }
  const toFile = !options.stream && options.destination !== 'stdout'
  const stream = options.stream
  const file = stream
    ? undefined
    : pino.destination({
        dest: toFile ? options.destination : 1,
        sync: false,
        mkdir: true,
        append: true,
        // Each line encoded once: in text mode the destination measures its whole pending chunk again on every write.
        contentMode: 'buffer',
        minLength: toFile ? FILE_BATCH_BYTES : 0,
        maxWrite: toFile ? FILE_WRITE_BYTES : undefined,
        periodicFlush: toFile ? FILE_FLUSH_MS : 0,
        maxLength: MAX_PENDING_BYTES,
      })
  // A destination handed in (a pino destination, tests) is watched the same way when it reports its writes and drops.
  const watched = file ?? (stream instanceof EventEmitter ? stream : undefined)
  let dropped = 0
  watched?.on('drop', () => {
    if (dropped++ === 0) options.onDrop?.(dropped)
  })
  // Without a listener a failed write (ENOSPC, EIO) is an unhandled 'error' that ends the process, and with it every
  // gateway's decisions. The destination keeps what it could not write and tries again with the next lines (up to
  // MAX_PENDING_BYTES, then drops and counts), so decisions go on and the log resumes once the disk takes it.
  let writeErrors = 0
  let failing = false
  let failedSinceGood = 0
  let lastError: unknown
  watched?.on('error', (error: NodeJS.ErrnoException) => {
    // pino's own listener on its destinations re-emits the first error it does not handle: one failure, seen twice.
    if (error === lastError) return
    lastError = error
    writeErrors++
    failedSinceGood++
    if (failing) return
    failing = true
    options.onWriteError?.(error)
  })
  watched?.on('write', () => {
    if (!failing) return
    failing = false
    options.onRecovered?.(failedSinceGood)
    failedSinceGood = 0
  })
  // In buffer mode the destination takes bytes, which its types (strings only) do not say.
  const bytes = file as unknown as { write(data: Buffer): boolean }
  const writeText = stream
    ? (text: string) => void stream.write(text)
    : (text: string) => {
        try {
          bytes.write(Buffer.from(text))
        } catch {
          // Written after close (a decision still in flight at shutdown): nothing is left to write it to.
        }
      }
  // Admin actions and security events (rare), and a line that JSON alone cannot write, go through pino.
  const logger: Logger = pino(
    {
      base: null,
      // Lines carry their own `time`: a decision's is the engine's clock, which tests control.
      timestamp: false,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write: writeText },
  )
  const rules = redaction(options.redactPaths)
  let closing: Promise<void> | undefined
  return {
    write(make) {
      const line = decisionLine(make(), rules)
      let text: string
      try {
        text = JSON.stringify(line)
      } catch {
        // A value JSON has no text for (a BigInt, a cycle; never in a request parsed from JSON): pino writes what it can.
        logger.info(line)
        return
      }
      // The line pino writes for logger.info(line): the level first, then the line's fields.
      writeText(`{"level":"info",${text.slice(1)}\n`)
    },
    event(type, fields) {
      logger.info({ type, v: 1, time: new Date().toISOString(), ...fields })
    },
    health: () => ({ failing, writeErrors, dropped }),
    close() {
      closing ??= finish()
      return closing
    },
  }

  async function finish(): Promise<void> {
    if (dropped > 0) options.onDrop?.(dropped)
    if (!file) return
    if (!toFile) {
      try {
        file.flushSync()
      } catch {
        // Nothing buffered or not open yet: either way nothing is left to write.
      }
      return
    }
    // Ending writes everything still waiting, after any write in flight, then closes the file.
    const closed = new Promise<void>((resolve) => {
      file.once('close', resolve)
      // A destination that cannot take the last lines (a full disk) is closed without them: its flush timer and
      // descriptor would otherwise keep the process from exiting.
      file.once('error', () => {
        file.destroy()
        resolve()
      })
    })
    file.end()
    await closed
  }
}
