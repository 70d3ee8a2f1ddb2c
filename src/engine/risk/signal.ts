import type { RiskSignal } from '../types.js'
import type { Step } from '../policy/files/risk.js'

export interface SignalResult {
  signal: RiskSignal
}

/** Sums the points of every step the value has crossed. */
export function stepPoints(steps: readonly Step[], value: number, direction: 'below' | 'above'): number {
  let points = 0
  for (const step of steps) {
    if (direction === 'below' ? value < step.threshold : value > step.threshold) points += step.add
  }
  return points
}

export const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value))
