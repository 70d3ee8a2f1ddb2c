import type { ReasonCode, StepUpLevel, Verdict } from './types.js'

export interface DecisionObservation {
  verdict: Verdict
  /** The first reason: the one that decided. */
  reason: ReasonCode
  seconds: number
  riskScore?: number
  stepUpLevel?: StepUpLevel
}

/** What the engine reports about itself; the service implements it with Prometheus, tests may count calls. */
export interface PdpMetrics {
  decision(observation: DecisionObservation): void
  /** One store round trip: how long it took and whether it failed. */
  storeCall(seconds: number, ok: boolean): void
  /** The shadow policy would have answered `to` where the active one answered `from`. */
  shadowMismatch(from: Verdict, to: Verdict): void
}

export const noMetrics: PdpMetrics = { decision() {}, storeCall() {}, shadowMismatch() {} }
