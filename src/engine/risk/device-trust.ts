import type { DeviceContext, RiskSignal, StepUpLevel } from '../types.js'
import { STEP_UP_LEVELS } from '../types.js'
import type { DeviceState, Pending, StoreBatch } from '../ports.js'
import { DAY_MS, riskKeys } from './keys.js'
import type { RiskPolicy } from '../policy/files/risk.js'
import { clamp, stepPoints } from './signal.js'

export interface DeviceObservation {
  signal: RiskSignal
  trust: number
  /** The level and time (epoch ms) of the last step-up satisfied on this device. */
  remembered?: { level: StepUpLevel; at: number }
  /** Writes to run after the decision (first sighting, satisfied step-up). */
  followUp(batch: StoreBatch, satisfied?: StepUpLevel): void
}

export type DeviceEvent = 'login_success' | 'login_failure' | 'suspicious_activity' | 'step_up_satisfied'

function postureAdjustment(device: DeviceContext, policy: RiskPolicy): number {
  let points = 0
  for (const key of ['managed', 'encrypted', 'osUpToDate'] as const) {
    if (device[key] === true) points += policy.device.posture[key].whenTrue
    if (device[key] === false) points += policy.device.posture[key].whenFalse
  }
  return points
}

/**
 * A device's trust for this request: its stored, event-adjusted trust (the initial trust for a device never
 * seen) moved by the posture the request reports; a request without a device gets `missingTrust`.
 */
function currentTrust(stored: string | undefined, device: DeviceContext | undefined, policy: RiskPolicy): number {
  if (!device) return policy.device.missingTrust
  const base = stored === undefined ? policy.device.initialTrust : Number(stored)
  return clamp(base + postureAdjustment(device, policy), 0, 100)
}

/** Adjusts a device's trust after a security event (atomic on every store driver). */
export function applyDeviceEvent(batch: StoreBatch, subjectId: string, deviceId: string, event: DeviceEvent, policy: RiskPolicy, now: number): void {
  const delta = {
    login_success: policy.device.events.loginSuccess,
    login_failure: policy.device.events.loginFailure,
    suspicious_activity: policy.device.events.suspiciousActivity,
    step_up_satisfied: policy.device.events.stepUpSatisfied,
  }[event]
  const key = riskKeys.device(subjectId, deviceId)
  const ttl = policy.device.retentionDays * DAY_MS
  batch.hIncrClamped(key, 'trust', delta, policy.device.initialTrust, 0, 100, ttl)
  batch.hSet(key, { lastSeen: String(now) }, ttl)
}

/**
 * Reads the request's device record in the decision's batch, once: the sessions gate and the device-trust
 * signal share it, and its trust is computed once, on first use after the batch ran.
 */
export function readDevice(subjectId: string, device: DeviceContext | undefined, policy: RiskPolicy, batch: StoreBatch): DeviceState {
  return new DeviceRead(device ? batch.hGetAll(riskKeys.device(subjectId, device.id)) : undefined, device, policy)
}

/** A class rather than an object literal with a getter, which V8 builds slowly on every decision. */
class DeviceRead implements DeviceState {
  private computed: number | undefined
  constructor(
    readonly record: Pending<Record<string, string>> | undefined,
    private readonly device: DeviceContext | undefined,
    private readonly policy: RiskPolicy,
  ) {}
  get trust(): number {
    return (this.computed ??= currentTrust(this.record?.value.trust, this.device, this.policy))
  }
}

/** Per-subject device registry: unknown devices start neutral; posture and past events move trust. */
export function prepareDeviceTrust(
  subjectId: string,
  device: DeviceContext | undefined,
  state: DeviceState,
  now: number,
  policy: RiskPolicy,
  batch: StoreBatch,
): () => DeviceObservation {
  if (!device || !state.record) {
    return () => {
      const trust = state.trust
      const contribution = stepPoints(policy.scoring.deviceTrust, trust, 'below')
      const signal: RiskSignal = { name: 'deviceTrust', value: { trust, known: false, device: null }, contribution, detail: 'no device in the request' }
      if (contribution > 0) signal.reason = 'untrusted_device'
      return { signal, trust, followUp() {} }
    }
  }
  const record = state.record
  const key = riskKeys.device(subjectId, device.id)
  const ttl = policy.device.retentionDays * DAY_MS
  batch.hSet(key, { lastSeen: String(now) }, ttl)
  return () => {
    const rec = record.value
    const known = rec.lastSeen !== undefined
    const posture = postureAdjustment(device, policy)
    const trust = state.trust
    const contribution = stepPoints(policy.scoring.deviceTrust, trust, 'below')
    const signal: RiskSignal = { name: 'deviceTrust', value: { trust, known, posture }, contribution }
    if (!known) signal.reason = 'new_device'
    else if (contribution > 0) signal.reason = 'untrusted_device'
    const observation: DeviceObservation = {
      signal,
      trust,
      followUp(later, satisfied) {
        if (!known) later.hSet(key, { firstSeen: String(now) }, ttl)
        if (satisfied) {
          applyDeviceEvent(later, subjectId, device.id, 'step_up_satisfied', policy, now)
          later.hSet(key, { stepUpLevel: satisfied, stepUpAt: String(now) }, ttl)
        }
      },
    }
    const level = rec.stepUpLevel as StepUpLevel | undefined
    if (level && (STEP_UP_LEVELS as readonly string[]).includes(level) && rec.stepUpAt !== undefined) {
      observation.remembered = { level, at: Number(rec.stepUpAt) }
    }
    return observation
  }
}
