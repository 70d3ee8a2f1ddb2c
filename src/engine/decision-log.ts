import type { Decision, DecisionRequest, Subject } from './types.js'

/** One decision as the audit stream records it. */
/** The request as decided on; without a subject when a token failed verification (the token itself is never kept). */
export type LoggedRequest = Omit<DecisionRequest, 'subject'> & { subject?: Subject }

export interface DecisionLogEntry {
  request: LoggedRequest
  decision: Decision
  /** Epoch milliseconds when the decision was made. */
  time: number
  latencyMs: number
  requestId?: string
  /** The W3C trace id the request came with, so a decision joins its distributed trace. */
  traceId?: string
  /** Which front door asked: the JSON API, a gateway's forward-auth call, a batch, the CLI. */
  source?: DecisionSource
  /** The shadow (candidate) policy's verdict, when it differs from the one returned. */
  shadow?: ShadowVerdict
}

export interface ShadowVerdict {
  policyVersion: string
  decision: Decision['decision']
  reasons: Decision['reasons']
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
