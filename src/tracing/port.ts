/**
 * The engine's decision steps a tracer can time. The engine knows nothing of OpenTelemetry: it runs each step
 * through this port, and the service plugs in spans when tracing is on.
 */
export type DecisionStep = 'policy' | 'risk'

export interface DecisionTracer {
  /** Runs one synchronous step of a decision, as a child of whatever span is current. */
  step<T>(name: DecisionStep, run: () => T): T
}

export const noDecisionTracer: DecisionTracer = { step: (_name, run) => run() }
