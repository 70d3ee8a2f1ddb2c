import type { Decision, DecisionRequest } from './types.js'

/** One decision as the audit stream records it. */
export interface DecisionLogEntry {
  request: DecisionRequest
  decision: Decision
  /** Epoch milliseconds when the decision was made. */
  time: number
  latencyMs: number
  requestId?: string
}

/**
 * Where decisions are recorded. Entries are built lazily so that a disabled or sampling
 * sink costs nothing on the hot path; a sink must never block or throw into the caller.
 */
export interface DecisionLog {
  write(make: () => DecisionLogEntry): void
}

export const noDecisionLog: DecisionLog = { write() {} }
