import type { RiskFindings, StateStore, StoreBatch } from '../engine/ports.js'
import type { PolicyBundle } from '../engine/policy/bundle.js'
import { applyDeviceEvent, type DeviceEvent } from '../engine/risk/device-trust.js'
import type { GeoLookup } from '../engine/risk/geo.js'
import { classifyIp, normaliseIp } from '../engine/ip-address.js'
import { recordActiveHour } from '../engine/risk/behaviour.js'
import { decisionId } from '../engine/ids.js'
import type { Clock } from '../engine/types.js'
import { writeRevocation } from '../identity/revocation.js'
import { sessionTtlMs } from '../identity/sessions.js'
import type { SecurityEvent, SecurityEventType } from './events.js'
import { responseKeys } from './keys.js'
import type { ResponseAction, ResponseRule } from '../engine/policy/files/response.js'
import type { Restriction } from './restrictions.js'

/** Who a fired rule is about: a subject (and the address it came from), or only an address. */
export interface Target {
  subject?: string
  tenant?: string
  ip?: string
}

export interface Firing {
  rule: string
  target: Target
  /** Action types that ran; `block_ip` without an address is reported as skipped instead. */
  actions: string[]
  skipped: string[]
  /** What set it off: an event type or `risk_findings`. */
  trigger: string
}

/** The body of a `notify` webhook: what fired, for whom, and what was done. */
export interface ResponseNotice {
  id: string
  type: 'pdp.response'
  /** ISO 8601. */
  time: string
  rule: string
  trigger: string
  target: Target
  actions: string[]
}

export interface EventOutcome {
  eventId: string
  fired: Firing[]
}

export interface ResponderMetrics {
  event(type: SecurityEventType): void
  action(rule: string, action: string): void
}

export interface ResponderOptions {
  store: StateStore
  policy: { readonly current: PolicyBundle }
  geo: GeoLookup
  now: Clock
  /** The audit stream: one line per security event and per response action. */
  audit?: (type: 'security_event' | 'response_action', fields: Record<string, unknown>) => void
  notify?: (notice: ResponseNotice) => void
  metrics?: ResponderMetrics
  /** Failures of work that runs after a decision (risk-finding rules). */
  onBackgroundError?: (error: unknown) => void
}

export interface Responder {
  /** Records a security event, runs the rules it feeds and their actions; resolves when every write landed. */
  record(event: SecurityEvent): Promise<EventOutcome>
  /** Runs risk-finding rules for a decision's assessment, without delaying the decision. */
  onRiskFindings(findings: RiskFindings): void
  /** Resolves when work started by onRiskFindings has finished. */
  settled(): Promise<void>
}

const DEVICE_EVENTS: Partial<Record<SecurityEventType, DeviceEvent>> = {
  login_success: 'login_success',
  mfa_success: 'step_up_satisfied',
  login_failure: 'login_failure',
  mfa_failure: 'login_failure',
  suspicious_activity: 'suspicious_activity',
}
const MAX_SCORE = Number.MAX_SAFE_INTEGER
const DAY_MS = 86_400_000

interface Candidate {
  rule: ResponseRule
  target: Target
  trigger: string
}

export function createResponder(options: ResponderOptions): Responder {
  const { store, geo } = options
  const pending = new Set<Promise<void>>()

  function writeAction(batch: StoreBatch, action: ResponseAction, rule: string, target: Target, now: number, bundle: PolicyBundle): boolean {
    const restriction = (durationSeconds: number | undefined, extra: Partial<Restriction> = {}): [string, number] => {
      const value: Restriction = { rule, since: now, ...extra }
      if (durationSeconds !== undefined) value.until = now + durationSeconds * 1000
      // A restriction without an end still needs a TTL; a month bounds what a forgotten freeze costs.
      return [JSON.stringify(value), durationSeconds === undefined ? 30 * DAY_MS : durationSeconds * 1000 + 60_000]
    }
    const subject = target.subject
    switch (action.type) {
      case 'lockout':
        if (subject === undefined) return false
        batch.set(responseKeys.lock(subject), ...restriction(action.durationSeconds))
        return true
      case 'freeze':
        if (subject === undefined) return false
        batch.set(responseKeys.freeze(subject), ...restriction(action.durationSeconds))
        return true
      case 'require_step_up':
        if (subject === undefined) return false
        batch.set(responseKeys.stepUp(subject), ...restriction(action.durationSeconds, { level: action.level }))
        return true
      case 'revoke_sessions':
        if (subject === undefined) return false
        // Rounded up: a token issued in this very second may be the attacker's.
        writeRevocation(batch, { subject: { id: subject, before: Math.ceil(now / 1000) } }, now, sessionTtlMs(bundle.identity))
        return true
      case 'block_ip':
        if (target.ip === undefined) return false
        batch.set(responseKeys.ip(normaliseIp(target.ip)), ...restriction(action.durationSeconds, { mode: action.mode, level: action.level }))
        return true
      case 'notify':
        return true
    }
  }

  /** Fires each candidate not cooling down for its target: marks, then every action's writes in one batch. */
  async function fire(candidates: readonly Candidate[], now: number, bundle: PolicyBundle): Promise<Firing[]> {
    if (candidates.length === 0) return []
    const marks = store.batch()
    const claimed = candidates.map((c) => {
      if (c.rule.cooldownSeconds === 0) return { value: true }
      const key = responseKeys.fired(c.rule.name, c.target.subject ?? `ip:${c.target.ip}`)
      return marks.setIfAbsent(key, String(now), c.rule.cooldownSeconds * 1000)
    })
    await marks.exec()
    const firing = candidates.filter((_, i) => claimed[i]!.value)
    if (firing.length === 0) return []
    const writes = store.batch()
    const firings = firing.map((c) => {
      const done: string[] = []
      const skipped: string[] = []
      for (const action of c.rule.actions) (writeAction(writes, action, c.rule.name, c.target, now, bundle) ? done : skipped).push(action.type)
      return { rule: c.rule.name, target: c.target, actions: done, skipped, trigger: c.trigger }
    })
    await writes.exec()
    for (const f of firings) {
      for (const action of f.actions) {
        options.metrics?.action(f.rule, action)
        options.audit?.('response_action', { rule: f.rule, action, trigger: f.trigger, subject: f.target.subject, tenant: f.target.tenant, ip: f.target.ip, at: now })
      }
      if (f.actions.includes('notify')) {
        options.notify?.({ id: decisionId(now), type: 'pdp.response', time: new Date(now).toISOString(), rule: f.rule, trigger: f.trigger, target: f.target, actions: f.actions })
      }
    }
    return firings
  }

  return {
    async record(event) {
      const now = options.now()
      const bundle = options.policy.current
      const risk = bundle.risk
      const eventId = decisionId(now)
      const batch = store.batch()

      const deviceEvent = DEVICE_EVENTS[event.type]
      if (deviceEvent && event.deviceId !== undefined) applyDeviceEvent(batch, event.subject, event.deviceId, deviceEvent, risk, now)
      if (event.type === 'login_success' || event.type === 'mfa_success') {
        recordActiveHour(batch, event.subject, event.time, risk)
      }
      if (event.type === 'logout' && event.sessionId !== undefined) {
        writeRevocation(batch, { sessionId: event.sessionId }, now, sessionTtlMs(bundle.identity))
      }
      if (event.type === 'password_reset') {
        writeRevocation(batch, { subject: { id: event.subject, before: Math.ceil(event.time / 1000) } }, now, sessionTtlMs(bundle.identity))
      }

      const subjectTarget: Target = { subject: event.subject }
      if (event.tenant !== undefined) subjectTarget.tenant = event.tenant
      if (event.ip !== undefined) subjectTarget.ip = event.ip
      const ip = event.ip === undefined ? undefined : normaliseIp(event.ip)
      const country = ip !== undefined && classifyIp(ip) === 'public' ? geo.lookup(ip)?.country : undefined
      const checks: (() => Candidate | undefined)[] = []
      for (const rule of bundle.response.rules) {
        const d = rule.detect
        const candidate = (target: Target): Candidate => ({ rule, target, trigger: event.type })
        switch (d.kind) {
          case 'subject_failures': {
            const key = responseKeys.window(rule.name, event.subject)
            if (d.resetOn.includes(event.type)) batch.del(key)
            if (!d.events.includes(event.type)) break
            const since = now - d.windowSeconds * 1000
            batch.zAdd(key, event.time, eventId, d.windowSeconds * 1000)
            batch.zRemRangeByScore(key, 0, since - 1)
            const count = batch.zCount(key, since, MAX_SCORE)
            checks.push(() => (count.value >= d.threshold ? candidate(subjectTarget) : undefined))
            break
          }
          case 'ip_subjects': {
            if (!d.events.includes(event.type) || ip === undefined) break
            const key = responseKeys.window(rule.name, ip)
            const since = now - d.windowSeconds * 1000
            batch.zAdd(key, event.time, event.subject, d.windowSeconds * 1000)
            batch.zRemRangeByScore(key, 0, since - 1)
            const count = batch.zCount(key, since, MAX_SCORE)
            checks.push(() => (count.value >= d.threshold ? candidate({ ip }) : undefined))
            break
          }
          case 'subject_countries': {
            if (country === undefined) break
            const key = responseKeys.window(rule.name, event.subject)
            const since = now - d.windowSeconds * 1000
            batch.zAdd(key, event.time, `${country}|${eventId}`, d.windowSeconds * 1000)
            batch.zRemRangeByScore(key, 0, since - 1)
            const seen = batch.zRangeByScore(key, since, MAX_SCORE)
            checks.push(() => {
              const countries = new Set(seen.value.map((m) => m.slice(0, m.indexOf('|'))))
              return seen.value.length >= d.minEvents && countries.size >= d.minCountries ? candidate(subjectTarget) : undefined
            })
            break
          }
          case 'event':
            if (d.events.includes(event.type)) checks.push(() => candidate(subjectTarget))
            break
          case 'risk_findings':
            break
        }
      }
      await batch.exec()
      options.metrics?.event(event.type)
      options.audit?.('security_event', {
        eventId,
        event: event.type,
        subject: event.subject,
        tenant: event.tenant,
        ip: event.ip,
        device: event.deviceId,
        session: event.sessionId,
        at: event.time,
      })
      const candidates = checks.map((check) => check()).filter((c): c is Candidate => c !== undefined)
      return { eventId, fired: await fire(candidates, now, bundle) }
    },

    onRiskFindings(findings) {
      const { bundle } = findings
      if (!bundle.response.rules.some((r) => r.detect.kind === 'risk_findings')) return
      const behaviour = findings.assessment.signals.find((s) => s.name === 'behaviour')?.value as { anomaly?: number } | undefined
      const anomaly = behaviour?.anomaly ?? 0
      // Signals keep their reason even when they added no points (a new but well-kept device): facts still count here.
      const seen = new Set(findings.reasons)
      for (const s of findings.assessment.signals) if (s.reason) seen.add(s.reason)
      const candidates: Candidate[] = []
      for (const rule of bundle.response.rules) {
        const d = rule.detect
        if (d.kind !== 'risk_findings') continue
        const named = d.reasons.length > 0 && (d.match === 'all' ? d.reasons.every((r) => seen.has(r)) : d.reasons.some((r) => seen.has(r)))
        const anomalous = d.behaviourAnomalyAtLeast !== undefined && anomaly >= d.behaviourAnomalyAtLeast
        if (!named && !anomalous) continue
        const { facts } = findings
        const target: Target = { subject: facts.subjectId, tenant: facts.tenant }
        if (facts.ip !== undefined) target.ip = facts.ip
        candidates.push({ rule, target, trigger: 'risk_findings' })
      }
      if (candidates.length === 0) return
      const work = fire(candidates, findings.facts.now, bundle).then(
        () => undefined,
        (err: unknown) => options.onBackgroundError?.(err),
      )
      pending.add(work)
      void work.finally(() => pending.delete(work))
    },

    async settled() {
      while (pending.size > 0) await Promise.all([...pending])
    },
  }
}
