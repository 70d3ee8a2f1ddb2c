import type { RiskSignal } from '../types.js'
import type { StoreBatch } from '../ports.js'
import { DAY_MS, riskKeys } from './keys.js'
import type { RiskPolicy } from '../policy/files/risk.js'
import { clamp } from './signal.js'

export interface BehaviourObservation {
  /** 0-1, the three anomalies combined. */
  anomaly: number
  signal: RiskSignal
  followUp(batch: StoreBatch): void
}

/**
 * A per-subject baseline, updated on every decision with atomic counters: the decisions per active
 * minute, the hours of day the subject works, the resource types they touch. Each gives a 0-1
 * anomaly; they combine as independent evidence, 1 - Π(1 - weight·anomaly).
 */
export function prepareBehaviour(subjectId: string, resourceType: string, now: number, policy: RiskPolicy, batch: StoreBatch): () => BehaviourObservation {
  const ttl = policy.device.retentionDays * DAY_MS
  const minute = Math.floor(now / 60_000)
  const hour = new Date(now).getUTCHours()
  const statsKey = riskKeys.behaviour(subjectId)
  const stats = batch.hGetAll(statsKey)
  const total = batch.hIncrBy(statsKey, 'total', 1, ttl)
  const thisMinute = batch.incrBy(riskKeys.minute(subjectId, minute), 1, 120_000)
  const thisHour = batch.hIncrBy(riskKeys.hours(subjectId), String(hour), 1, ttl)
  const newType = batch.sAdd(riskKeys.resourceTypes(subjectId), resourceType, ttl)
  const b = policy.behaviour

  return () => {
    const previous = total.value - 1
    const minuteCount = thisMinute.value
    const followUp = (later: StoreBatch) => {
      if (minuteCount === 1) later.hIncrBy(statsKey, 'activeMinutes', 1, ttl)
    }
    if (previous < b.warmupDecisions) {
      return {
        anomaly: 0,
        followUp,
        signal: { name: 'behaviour', value: { anomaly: 0, history: previous }, contribution: 0, detail: `learning: ${previous} of ${b.warmupDecisions} decisions seen` },
      }
    }
    const activeMinutes = Math.max(1, Number(stats.value.activeMinutes ?? 1))
    const usualPerMinute = previous / activeMinutes
    const ratio = minuteCount / Math.max(usualPerMinute, 1e-9)
    const rate = minuteCount < b.burstMinimum ? 0 : clamp((ratio - 1) / (b.burstRatio - 1), 0, 1)
    const share = (thisHour.value - 1) / previous
    const hourAnomaly = b.unusualHourShare <= 0 ? 0 : clamp(1 - share / b.unusualHourShare, 0, 1)
    const resource = newType.value ? 1 : 0
    const anomaly = 1 - (1 - b.weights.rate * rate) * (1 - b.weights.hour * hourAnomaly) * (1 - b.weights.newResource * resource)
    const round = (n: number) => Math.round(n * 1000) / 1000
    return {
      anomaly: round(anomaly),
      followUp,
      signal: {
        name: 'behaviour',
        value: {
          anomaly: round(anomaly),
          rate: round(rate),
          hour: round(hourAnomaly),
          newResource: resource,
          requestsThisMinute: minuteCount,
          usualPerMinute: round(usualPerMinute),
        },
        contribution: 0,
      },
    }
  }
}

/** A successful login counts toward the hours of day the subject usually works (security events, outside decisions). */
export function recordActiveHour(batch: StoreBatch, subjectId: string, time: number, policy: RiskPolicy): void {
  batch.hIncrBy(riskKeys.hours(subjectId), String(new Date(time).getUTCHours()), 1, policy.device.retentionDays * DAY_MS)
}
