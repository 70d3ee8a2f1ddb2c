import type { Decision, DecisionRequest } from './types.js'

/** One decision as the audit stream records it. */
export interface DecisionLogEntry {
  request: DecisionRequest
  decision: Decision
  /** Epoch milliseconds when the decision was made. */
  time: number
  latencyMs: number
  requestId?: string
  /** Which front door asked: the JSON API, a gateway's forward-auth call, a batch, the CLI. */
  source?: DecisionSource
}

export type DecisionSource = 'http' | 'forward_auth' | 'batch' | 'cli'

/**
 * Where decisions are recorded. Entries are built lazily so that a disabled or sampling
 * sink costs nothing on the hot path; a sink must never block or throw into the caller.
 */
export interface DecisionLog {
  write(make: () => DecisionLogEntry): void
}

export const noDecisionLog: DecisionLog = { write() {} }
