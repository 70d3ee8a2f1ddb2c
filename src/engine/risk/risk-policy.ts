import { SENSITIVITIES, STEP_UP_LEVELS, type Sensitivity, type StepUpLevel } from '../types.js'
import { parseYamlFile, type YamlFile, type YamlPath } from '../policy/yaml-file.js'

/** Points added when a value crosses a threshold; steps add up (the reference: < 70 → +30, < 40 → +20 more). */
export interface Step {
  threshold: number
  add: number
}

export interface LevelSpec {
  /** Methods the identity provider may use, strongest first. */
  methods: string[]
  /** Seconds since the last active authentication that still satisfy this level. */
  maxAge: number
  acrValues: string[]
}

export interface RiskPolicy {
  thresholds: { low: number; medium: number; high: number; deny: number }
  scoring: {
    /** Added while device trust is below each threshold. */
    deviceTrust: Step[]
    /** Added while location risk (0-1) is above each threshold. */
    locationRisk: Step[]
    /** Added while the behaviour anomaly (0-1) is above each threshold. */
    behaviourAnomaly: Step[]
    /** Added while the authentication is older than each threshold, hours. */
    authAgeHours: Step[]
    /** Added when the request carries no session (authentication time unknown). */
    noSession: number
  }
  sensitivity: {
    multipliers: Record<Sensitivity, number>
    default: Sensitivity
    /** Per resource type: `default` and per action. Maps: types and actions come from callers, and "constructor" is just a name. */
    resources: ReadonlyMap<string, ReadonlyMap<string, Sensitivity>>
  }
  stepUp: {
    levels: Record<StepUpLevel, LevelSpec>
    /** Added to `high` when device trust is below this. */
    adminApprovalBelowTrust: number
    /** Added to `medium` when location risk is above this. */
    emailAboveLocationRisk: number
    /** RFC 8176 `amr` values that prove each method. */
    amr: Record<string, string[]>
    /** A satisfied step-up is remembered on the device this long, seconds, for the same or a lower level. */
    rememberSeconds: number
  }
  device: {
    initialTrust: number
    /** Trust assumed when the request names no device: never more than an unknown device's. */
    missingTrust: number
    posture: Record<'managed' | 'encrypted' | 'osUpToDate', { whenTrue: number; whenFalse: number }>
    events: { loginSuccess: number; loginFailure: number; suspiciousActivity: number; stepUpSatisfied: number }
    retentionDays: number
  }
  location: {
    maxSpeedKmh: number
    impossibleTravelRisk: number
    highRiskCountryRisk: number
    newCountryRisk: number
    /** Private, loopback or unlocatable addresses: no travel verdict, but not trusted more than public ones. */
    unknownLocationRisk: number
    highRiskCountries: string[]
    /** Maps: the tenant and subject looked up come from callers, and "__proto__" is just a name. */
    allowedCountries: { tenants: ReadonlyMap<string, string[]>; subjects: ReadonlyMap<string, string[]> }
  }
  behaviour: {
    /** Decisions a subject needs before anomalies count (a new subject is not anomalous at everything). */
    warmupDecisions: number
    /** A minute's requests over this many times the subject's usual per-minute rate is a full burst. */
    burstRatio: number
    /** Requests in a minute below this never count as a burst. */
    burstMinimum: number
    /** Share of past activity in this hour of day below which the hour is unusual. */
    unusualHourShare: number
    weights: { rate: number; hour: number; newResource: number }
  }
}

export const DEFAULT_RISK_POLICY: RiskPolicy = {
  thresholds: { low: 25, medium: 50, high: 80, deny: 100 },
  scoring: {
    deviceTrust: [
      { threshold: 70, add: 30 },
      { threshold: 40, add: 20 },
    ],
    locationRisk: [
      { threshold: 0.6, add: 25 },
      { threshold: 0.8, add: 15 },
    ],
    behaviourAnomaly: [
      { threshold: 0.5, add: 20 },
      { threshold: 0.7, add: 10 },
    ],
    authAgeHours: [
      { threshold: 8, add: 10 },
      { threshold: 24, add: 15 },
    ],
    noSession: 10,
  },
  sensitivity: {
    multipliers: { low: 0.7, medium: 1.0, high: 1.3, critical: 1.6 },
    default: 'medium',
    resources: new Map(),
  },
  stepUp: {
    levels: {
      low: { methods: ['totp'], maxAge: 3600, acrValues: ['aal2'] },
      medium: { methods: ['totp', 'sms'], maxAge: 900, acrValues: ['aal2'] },
      high: { methods: ['webauthn'], maxAge: 300, acrValues: ['aal3', 'phrh'] },
    },
    adminApprovalBelowTrust: 30,
    emailAboveLocationRisk: 0.7,
    amr: { webauthn: ['hwk', 'swk'], totp: ['otp', 'mfa'], sms: ['sms'], email: ['email'], admin_approval: [] },
    rememberSeconds: 8 * 3600,
  },
  device: {
    initialTrust: 50,
    missingTrust: 50,
    posture: {
      managed: { whenTrue: 15, whenFalse: -5 },
      encrypted: { whenTrue: 10, whenFalse: -15 },
      osUpToDate: { whenTrue: 5, whenFalse: -10 },
    },
    events: { loginSuccess: 5, loginFailure: -10, suspiciousActivity: -25, stepUpSatisfied: 10 },
    retentionDays: 90,
  },
  location: {
    maxSpeedKmh: 900,
    impossibleTravelRisk: 1,
    highRiskCountryRisk: 0.9,
    newCountryRisk: 0.5,
    unknownLocationRisk: 0.3,
    highRiskCountries: [],
    allowedCountries: { tenants: new Map(), subjects: new Map() },
  },
  behaviour: {
    warmupDecisions: 20,
    burstRatio: 10,
    burstMinimum: 10,
    unusualHourShare: 0.02,
    weights: { rate: 0.8, hour: 0.5, newResource: 0.3 },
  },
}

const COUNTRY = /^[A-Z]{2}$/

type Shape = 'number' | 'integer' | 'string' | 'boolean'

/** Reads one YAML subtree over its defaults, refusing unknown keys and wrong types with the offending line. */
class Reader {
  constructor(private readonly yaml: YamlFile) {}

  object(path: YamlPath, value: unknown): Record<string, unknown> {
    if (value === undefined || value === null) return {}
    if (typeof value !== 'object' || Array.isArray(value)) this.yaml.fail(path, 'must be a mapping')
    return value as Record<string, unknown>
  }

  known(path: YamlPath, value: Record<string, unknown>, keys: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) this.yaml.fail([...path, key], `unknown key "${key}" (expected one of ${keys.join(', ')})`)
    }
  }

  scalar<T extends number | string | boolean>(path: YamlPath, value: unknown, fallback: T, shape: Shape, range?: [number, number]): T {
    if (value === undefined || value === null) return fallback
    const ok =
      shape === 'integer' ? Number.isInteger(value) : shape === 'number' ? typeof value === 'number' && Number.isFinite(value) : typeof value === shape
    if (!ok) this.yaml.fail(path, `must be ${shape === 'integer' ? 'an integer' : `a ${shape}`}`)
    if (range && ((value as number) < range[0] || (value as number) > range[1])) this.yaml.fail(path, `must be between ${range[0]} and ${range[1]}`)
    return value as T
  }

  strings(path: YamlPath, value: unknown, fallback: string[], check?: (s: string) => string | undefined): string[] {
    if (value === undefined || value === null) return fallback
    if (!Array.isArray(value)) this.yaml.fail(path, 'must be a list')
    return (value as unknown[]).map((item, i) => {
      if (typeof item !== 'string' || item === '') this.yaml.fail([...path, i], 'must be a non-empty string')
      const problem = check?.(item as string)
      if (problem) this.yaml.fail([...path, i], problem)
      return item as string
    })
  }

  steps(path: YamlPath, value: unknown, fallback: Step[], range: [number, number], direction: 'below' | 'above'): Step[] {
    if (value === undefined || value === null) return fallback
    if (!Array.isArray(value)) this.yaml.fail(path, `must be a list of { ${direction}: n, add: points }`)
    const steps = (value as unknown[]).map((raw, i) => {
      const item = this.object([...path, i], raw)
      this.known([...path, i], item, [direction, 'add'])
      if (item[direction] === undefined) this.yaml.fail([...path, i], `needs "${direction}"`)
      return {
        threshold: this.scalar([...path, i, direction], item[direction], 0, 'number', range),
        add: this.scalar([...path, i, 'add'], item.add, 0, 'number', [0, 100]),
      }
    })
    for (let i = 1; i < steps.length; i++) {
      const ordered = direction === 'below' ? steps[i]!.threshold < steps[i - 1]!.threshold : steps[i]!.threshold > steps[i - 1]!.threshold
      if (!ordered) this.yaml.fail([...path, i, direction], `steps must be ordered (${direction === 'below' ? 'decreasing' : 'increasing'})`)
    }
    return steps
  }

  sensitivity(path: YamlPath, value: unknown, fallback: Sensitivity): Sensitivity {
    if (value === undefined || value === null) return fallback
    if (!(SENSITIVITIES as readonly unknown[]).includes(value)) this.yaml.fail(path, `must be one of ${SENSITIVITIES.join(', ')}`)
    return value as Sensitivity
  }

  countries(path: YamlPath, value: unknown, fallback: string[]): string[] {
    return this.strings(path, value, fallback, (c) => (COUNTRY.test(c) ? undefined : `"${c}" is not an ISO 3166-1 alpha-2 code (two capital letters)`))
  }

  countryMap(path: YamlPath, value: unknown): Map<string, string[]> {
    const map = this.object(path, value)
    return new Map(Object.entries(map).map(([key, list]) => [key, this.countries([...path, key], list, [])]))
  }
}

/** Parses risk.yaml over the reference defaults; every problem is a PolicyFileError naming file and line. */
export function parseRiskPolicy(text: string, file = 'risk.yaml'): RiskPolicy {
  const yaml = parseYamlFile(text, file)
  const r = new Reader(yaml)
  const d = DEFAULT_RISK_POLICY
  const root = r.object([], yaml.value)
  r.known([], root, ['thresholds', 'scoring', 'sensitivity', 'stepUp', 'device', 'location', 'behaviour'])

  const th = r.object(['thresholds'], root.thresholds)
  r.known(['thresholds'], th, ['low', 'medium', 'high', 'deny'])
  const thresholds = {
    low: r.scalar(['thresholds', 'low'], th.low, d.thresholds.low, 'number', [0, 100]),
    medium: r.scalar(['thresholds', 'medium'], th.medium, d.thresholds.medium, 'number', [0, 100]),
    high: r.scalar(['thresholds', 'high'], th.high, d.thresholds.high, 'number', [0, 100]),
    deny: r.scalar(['thresholds', 'deny'], th.deny, d.thresholds.deny, 'number', [0, 101]),
  }
  if (!(thresholds.low <= thresholds.medium && thresholds.medium <= thresholds.high && thresholds.high <= thresholds.deny)) {
    yaml.fail(['thresholds'], 'thresholds must be ordered: low <= medium <= high <= deny')
  }

  const sc = r.object(['scoring'], root.scoring)
  r.known(['scoring'], sc, ['deviceTrust', 'locationRisk', 'behaviourAnomaly', 'authAgeHours', 'noSession'])
  const scoring = {
    deviceTrust: r.steps(['scoring', 'deviceTrust'], sc.deviceTrust, d.scoring.deviceTrust, [0, 100], 'below'),
    locationRisk: r.steps(['scoring', 'locationRisk'], sc.locationRisk, d.scoring.locationRisk, [0, 1], 'above'),
    behaviourAnomaly: r.steps(['scoring', 'behaviourAnomaly'], sc.behaviourAnomaly, d.scoring.behaviourAnomaly, [0, 1], 'above'),
    authAgeHours: r.steps(['scoring', 'authAgeHours'], sc.authAgeHours, d.scoring.authAgeHours, [0, 24 * 365], 'above'),
    noSession: r.scalar(['scoring', 'noSession'], sc.noSession, d.scoring.noSession, 'number', [0, 100]),
  }

  const se = r.object(['sensitivity'], root.sensitivity)
  r.known(['sensitivity'], se, ['multipliers', 'default', 'resources'])
  const mu = r.object(['sensitivity', 'multipliers'], se.multipliers)
  r.known(['sensitivity', 'multipliers'], mu, SENSITIVITIES)
  const multipliers = { ...d.sensitivity.multipliers }
  for (const level of SENSITIVITIES) multipliers[level] = r.scalar(['sensitivity', 'multipliers', level], mu[level], multipliers[level], 'number', [0, 10])
  const resources = new Map<string, Map<string, Sensitivity>>()
  const res = r.object(['sensitivity', 'resources'], se.resources)
  for (const [type, raw] of Object.entries(res)) {
    if (typeof raw === 'string') {
      resources.set(type, new Map([['default', r.sensitivity(['sensitivity', 'resources', type], raw, 'medium')]]))
      continue
    }
    const actions = r.object(['sensitivity', 'resources', type], raw)
    resources.set(type, new Map(Object.entries(actions).map(([action, level]) => [action, r.sensitivity(['sensitivity', 'resources', type, action], level, 'medium')])))
  }
  const sensitivity = { multipliers, default: r.sensitivity(['sensitivity', 'default'], se.default, d.sensitivity.default), resources }

  const su = r.object(['stepUp'], root.stepUp)
  r.known(['stepUp'], su, ['levels', 'adminApprovalBelowTrust', 'emailAboveLocationRisk', 'amr', 'rememberSeconds'])
  const amrRaw = r.object(['stepUp', 'amr'], su.amr)
  const amr: Record<string, string[]> = { ...d.stepUp.amr }
  for (const [method, values] of Object.entries(amrRaw)) amr[method] = r.strings(['stepUp', 'amr', method], values, [])
  const lv = r.object(['stepUp', 'levels'], su.levels)
  r.known(['stepUp', 'levels'], lv, STEP_UP_LEVELS)
  const levels = { ...d.stepUp.levels }
  for (const level of STEP_UP_LEVELS) {
    const raw = r.object(['stepUp', 'levels', level], lv[level])
    r.known(['stepUp', 'levels', level], raw, ['methods', 'maxAge', 'acrValues'])
    const methods = r.strings(['stepUp', 'levels', level, 'methods'], raw.methods, d.stepUp.levels[level].methods, (m) =>
      Object.hasOwn(amr, m) ? undefined : `unknown method "${m}" (known: ${Object.keys(amr).join(', ')}; add it under stepUp.amr)`,
    )
    if (methods.length === 0) yaml.fail(['stepUp', 'levels', level, 'methods'], 'needs at least one method')
    levels[level] = {
      methods,
      maxAge: r.scalar(['stepUp', 'levels', level, 'maxAge'], raw.maxAge, d.stepUp.levels[level].maxAge, 'integer', [1, 86_400 * 30]),
      acrValues: r.strings(['stepUp', 'levels', level, 'acrValues'], raw.acrValues, d.stepUp.levels[level].acrValues),
    }
  }
  const stepUp = {
    levels,
    adminApprovalBelowTrust: r.scalar(['stepUp', 'adminApprovalBelowTrust'], su.adminApprovalBelowTrust, d.stepUp.adminApprovalBelowTrust, 'number', [0, 100]),
    emailAboveLocationRisk: r.scalar(['stepUp', 'emailAboveLocationRisk'], su.emailAboveLocationRisk, d.stepUp.emailAboveLocationRisk, 'number', [0, 1]),
    amr,
    rememberSeconds: r.scalar(['stepUp', 'rememberSeconds'], su.rememberSeconds, d.stepUp.rememberSeconds, 'integer', [0, 86_400 * 30]),
  }

  const dv = r.object(['device'], root.device)
  r.known(['device'], dv, ['initialTrust', 'missingTrust', 'posture', 'events', 'retentionDays'])
  const po = r.object(['device', 'posture'], dv.posture)
  r.known(['device', 'posture'], po, ['managed', 'encrypted', 'osUpToDate'])
  const posture = { ...d.device.posture }
  for (const key of ['managed', 'encrypted', 'osUpToDate'] as const) {
    const raw = r.object(['device', 'posture', key], po[key])
    r.known(['device', 'posture', key], raw, ['whenTrue', 'whenFalse'])
    posture[key] = {
      whenTrue: r.scalar(['device', 'posture', key, 'whenTrue'], raw.whenTrue, d.device.posture[key].whenTrue, 'number', [-100, 100]),
      whenFalse: r.scalar(['device', 'posture', key, 'whenFalse'], raw.whenFalse, d.device.posture[key].whenFalse, 'number', [-100, 100]),
    }
  }
  const ev = r.object(['device', 'events'], dv.events)
  r.known(['device', 'events'], ev, ['loginSuccess', 'loginFailure', 'suspiciousActivity', 'stepUpSatisfied'])
  const events = { ...d.device.events }
  for (const key of Object.keys(events) as (keyof typeof events)[]) {
    events[key] = r.scalar(['device', 'events', key], ev[key], events[key], 'number', [-100, 100])
  }
  const initialTrust = r.scalar(['device', 'initialTrust'], dv.initialTrust, d.device.initialTrust, 'number', [0, 100])
  const missingTrust = r.scalar(['device', 'missingTrust'], dv.missingTrust, d.device.missingTrust, 'number', [0, 100])
  if (missingTrust > initialTrust) yaml.fail(['device', 'missingTrust'], 'must not exceed initialTrust: a request without a device is not trusted more than an unknown device')
  const device = {
    initialTrust,
    missingTrust,
    posture,
    events,
    retentionDays: r.scalar(['device', 'retentionDays'], dv.retentionDays, d.device.retentionDays, 'integer', [1, 3650]),
  }

  const lo = r.object(['location'], root.location)
  r.known(['location'], lo, ['maxSpeedKmh', 'impossibleTravelRisk', 'highRiskCountryRisk', 'newCountryRisk', 'unknownLocationRisk', 'highRiskCountries', 'allowedCountries'])
  const ac = r.object(['location', 'allowedCountries'], lo.allowedCountries)
  r.known(['location', 'allowedCountries'], ac, ['tenants', 'subjects'])
  const location = {
    maxSpeedKmh: r.scalar(['location', 'maxSpeedKmh'], lo.maxSpeedKmh, d.location.maxSpeedKmh, 'number', [1, 100_000]),
    impossibleTravelRisk: r.scalar(['location', 'impossibleTravelRisk'], lo.impossibleTravelRisk, d.location.impossibleTravelRisk, 'number', [0, 1]),
    highRiskCountryRisk: r.scalar(['location', 'highRiskCountryRisk'], lo.highRiskCountryRisk, d.location.highRiskCountryRisk, 'number', [0, 1]),
    newCountryRisk: r.scalar(['location', 'newCountryRisk'], lo.newCountryRisk, d.location.newCountryRisk, 'number', [0, 1]),
    unknownLocationRisk: r.scalar(['location', 'unknownLocationRisk'], lo.unknownLocationRisk, d.location.unknownLocationRisk, 'number', [0, 1]),
    highRiskCountries: r.countries(['location', 'highRiskCountries'], lo.highRiskCountries, d.location.highRiskCountries),
    allowedCountries: {
      tenants: r.countryMap(['location', 'allowedCountries', 'tenants'], ac.tenants),
      subjects: r.countryMap(['location', 'allowedCountries', 'subjects'], ac.subjects),
    },
  }

  const bh = r.object(['behaviour'], root.behaviour)
  r.known(['behaviour'], bh, ['warmupDecisions', 'burstRatio', 'burstMinimum', 'unusualHourShare', 'weights'])
  const we = r.object(['behaviour', 'weights'], bh.weights)
  r.known(['behaviour', 'weights'], we, ['rate', 'hour', 'newResource'])
  const behaviour = {
    warmupDecisions: r.scalar(['behaviour', 'warmupDecisions'], bh.warmupDecisions, d.behaviour.warmupDecisions, 'integer', [0, 1_000_000]),
    burstRatio: r.scalar(['behaviour', 'burstRatio'], bh.burstRatio, d.behaviour.burstRatio, 'number', [1.01, 1000]),
    burstMinimum: r.scalar(['behaviour', 'burstMinimum'], bh.burstMinimum, d.behaviour.burstMinimum, 'number', [1, 1_000_000]),
    unusualHourShare: r.scalar(['behaviour', 'unusualHourShare'], bh.unusualHourShare, d.behaviour.unusualHourShare, 'number', [0, 1]),
    weights: {
      rate: r.scalar(['behaviour', 'weights', 'rate'], we.rate, d.behaviour.weights.rate, 'number', [0, 1]),
      hour: r.scalar(['behaviour', 'weights', 'hour'], we.hour, d.behaviour.weights.hour, 'number', [0, 1]),
      newResource: r.scalar(['behaviour', 'weights', 'newResource'], we.newResource, d.behaviour.weights.newResource, 'number', [0, 1]),
    },
  }

  return { thresholds, scoring, sensitivity, stepUp, device, location, behaviour }
}
