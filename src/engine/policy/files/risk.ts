import { Type, type Static, type TSchema } from 'typebox'
import { SENSITIVITIES, STEP_UP_LEVELS, type Sensitivity, type StepUpLevel } from '../../types.js'
import { readYamlDocument, type YamlPath } from '../yaml-reader.js'

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

const d = DEFAULT_RISK_POLICY
const DAY = 86_400

const num = (minimum: number, maximum: number, fallback: number) => Type.Optional(Type.Number({ minimum, maximum, default: fallback }))
const int = (minimum: number, maximum: number, fallback: number) => Type.Optional(Type.Integer({ minimum, maximum, default: fallback }))
const closed = <P extends Record<string, TSchema>>(properties: P) => Type.Optional(Type.Object(properties, { additionalProperties: false }))
const level = Type.Enum(SENSITIVITIES)
const words = Type.Array(Type.String({ minLength: 1 }))
const countries = Type.Array(
  Type.String({ pattern: '^[A-Z]{2}$', patternErrorMessage: 'must be an ISO 3166-1 alpha-2 code (two capital letters)' }),
)

/** Steps as written: `{ below: n, add: points }` (or `above`), the points added while a value is past n. */
const steps = (direction: 'below' | 'above', minimum: number, maximum: number, fallback: Step[]) =>
  Type.Optional(
    Type.Array(
      Type.Object(
        { [direction]: Type.Number({ minimum, maximum }), add: Type.Optional(Type.Number({ minimum: 0, maximum: 100, default: 0 })) },
        { additionalProperties: false },
      ) as TSchema,
      { default: fallback.map((s) => ({ [direction]: s.threshold, add: s.add })) },
    ),
  )

/** risk.yaml as written: every key optional, a missing one takes the reference value. */
export const RiskFileSchema = Type.Object(
  {
    thresholds: closed({ low: num(0, 100, d.thresholds.low), medium: num(0, 100, d.thresholds.medium), high: num(0, 100, d.thresholds.high), deny: num(0, 101, d.thresholds.deny) }),
    scoring: closed({
      deviceTrust: steps('below', 0, 100, d.scoring.deviceTrust),
      locationRisk: steps('above', 0, 1, d.scoring.locationRisk),
      behaviourAnomaly: steps('above', 0, 1, d.scoring.behaviourAnomaly),
      authAgeHours: steps('above', 0, 24 * 365, d.scoring.authAgeHours),
      noSession: num(0, 100, d.scoring.noSession),
    }),
    sensitivity: closed({
      multipliers: closed({
        low: num(0, 10, d.sensitivity.multipliers.low),
        medium: num(0, 10, d.sensitivity.multipliers.medium),
        high: num(0, 10, d.sensitivity.multipliers.high),
        critical: num(0, 10, d.sensitivity.multipliers.critical),
      }),
      default: Type.Optional(Type.Enum(SENSITIVITIES, { default: d.sensitivity.default })),
      /** Per resource type: one sensitivity, or one per action with `default` for the others. */
      resources: Type.Optional(Type.Record(Type.String(), Type.Union([level, Type.Record(Type.String(), level)]))),
    }),
    stepUp: closed({
      levels: closed({ low: levelSchema('low'), medium: levelSchema('medium'), high: levelSchema('high') }),
      adminApprovalBelowTrust: num(0, 100, d.stepUp.adminApprovalBelowTrust),
      emailAboveLocationRisk: num(0, 1, d.stepUp.emailAboveLocationRisk),
      /** Methods by name: stepUp.levels may name these and the built-in ones. */
      amr: Type.Optional(Type.Record(Type.String(), words)),
      rememberSeconds: int(0, 30 * DAY, d.stepUp.rememberSeconds),
    }),
    device: closed({
      initialTrust: num(0, 100, d.device.initialTrust),
      missingTrust: num(0, 100, d.device.missingTrust),
      posture: closed({ managed: posture('managed'), encrypted: posture('encrypted'), osUpToDate: posture('osUpToDate') }),
      events: closed({
        loginSuccess: num(-100, 100, d.device.events.loginSuccess),
        loginFailure: num(-100, 100, d.device.events.loginFailure),
        suspiciousActivity: num(-100, 100, d.device.events.suspiciousActivity),
        stepUpSatisfied: num(-100, 100, d.device.events.stepUpSatisfied),
      }),
      retentionDays: int(1, 3650, d.device.retentionDays),
    }),
    location: closed({
      maxSpeedKmh: num(1, 100_000, d.location.maxSpeedKmh),
      impossibleTravelRisk: num(0, 1, d.location.impossibleTravelRisk),
      highRiskCountryRisk: num(0, 1, d.location.highRiskCountryRisk),
      newCountryRisk: num(0, 1, d.location.newCountryRisk),
      unknownLocationRisk: num(0, 1, d.location.unknownLocationRisk),
      highRiskCountries: Type.Optional(countries),
      allowedCountries: closed({ tenants: Type.Optional(Type.Record(Type.String(), countries)), subjects: Type.Optional(Type.Record(Type.String(), countries)) }),
    }),
    behaviour: closed({
      warmupDecisions: int(0, 1_000_000, d.behaviour.warmupDecisions),
      burstRatio: num(1.01, 1000, d.behaviour.burstRatio),
      burstMinimum: num(1, 1_000_000, d.behaviour.burstMinimum),
      unusualHourShare: num(0, 1, d.behaviour.unusualHourShare),
      weights: closed({ rate: num(0, 1, d.behaviour.weights.rate), hour: num(0, 1, d.behaviour.weights.hour), newResource: num(0, 1, d.behaviour.weights.newResource) }),
    }),
  },
  { additionalProperties: false, title: 'risk.yaml', description: 'Risk scoring, thresholds and step-up levels of the zt-pdp policy directory.' },
)

function levelSchema(name: StepUpLevel) {
  const fallback = d.stepUp.levels[name]
  return closed({
    methods: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, default: fallback.methods })),
    maxAge: int(1, 30 * DAY, fallback.maxAge),
    acrValues: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { default: fallback.acrValues })),
  })
}

function posture(key: keyof RiskPolicy['device']['posture']) {
  return closed({ whenTrue: num(-100, 100, d.device.posture[key].whenTrue), whenFalse: num(-100, 100, d.device.posture[key].whenFalse) })
}

type RiskFile = Static<typeof RiskFileSchema>

/** Parses risk.yaml over the reference defaults; every problem is a PolicyFileError naming file and line. */
export function parseRiskPolicy(text: string, file = 'risk.yaml'): RiskPolicy {
  const doc = readYamlDocument(RiskFileSchema, text, file)
  const v = doc.value

  const thresholds = { ...d.thresholds, ...v.thresholds }
  if (!(thresholds.low <= thresholds.medium && thresholds.medium <= thresholds.high && thresholds.high <= thresholds.deny)) {
    doc.fail(['thresholds'], 'must be ordered: low <= medium <= high <= deny')
  }

  const ordered = (key: keyof RiskPolicy['scoring'] & keyof NonNullable<RiskFile['scoring']>, direction: 'below' | 'above'): Step[] => {
    const written = v.scoring?.[key] as Record<string, number>[] | undefined
    if (written === undefined) return d.scoring[key] as Step[]
    const list = written.map((step) => ({ threshold: step[direction]!, add: step.add ?? 0 }))
    for (let i = 1; i < list.length; i++) {
      const inOrder = direction === 'below' ? list[i]!.threshold < list[i - 1]!.threshold : list[i]!.threshold > list[i - 1]!.threshold
      if (!inOrder) doc.fail(['scoring', key, i, direction], `steps must be ordered (${direction === 'below' ? 'decreasing' : 'increasing'})`)
    }
    return list
  }
  const scoring = {
    deviceTrust: ordered('deviceTrust', 'below'),
    locationRisk: ordered('locationRisk', 'above'),
    behaviourAnomaly: ordered('behaviourAnomaly', 'above'),
    authAgeHours: ordered('authAgeHours', 'above'),
    noSession: v.scoring?.noSession ?? d.scoring.noSession,
  }

  const resources = new Map<string, Map<string, Sensitivity>>()
  for (const [type, written] of Object.entries(v.sensitivity?.resources ?? {})) {
    resources.set(type, typeof written === 'string' ? new Map([['default', written]]) : new Map(Object.entries(written)))
  }
  const sensitivity = {
    multipliers: { ...d.sensitivity.multipliers, ...v.sensitivity?.multipliers },
    default: v.sensitivity?.default ?? d.sensitivity.default,
    resources,
  }

  const amr: Record<string, string[]> = { ...d.stepUp.amr, ...v.stepUp?.amr }
  const levels = { ...d.stepUp.levels }
  for (const name of STEP_UP_LEVELS) {
    const written = v.stepUp?.levels?.[name]
    levels[name] = { ...d.stepUp.levels[name], ...written } as LevelSpec
    const path: YamlPath = ['stepUp', 'levels', name, 'methods']
    levels[name].methods.forEach((method, i) => {
      if (!Object.hasOwn(amr, method)) doc.fail(written?.methods ? [...path, i] : path, `unknown method "${method}" (known: ${Object.keys(amr).join(', ')}; add it under stepUp.amr)`)
    })
  }
  const stepUp = {
    levels,
    adminApprovalBelowTrust: v.stepUp?.adminApprovalBelowTrust ?? d.stepUp.adminApprovalBelowTrust,
    emailAboveLocationRisk: v.stepUp?.emailAboveLocationRisk ?? d.stepUp.emailAboveLocationRisk,
    amr,
    rememberSeconds: v.stepUp?.rememberSeconds ?? d.stepUp.rememberSeconds,
  }

  const dv = v.device
  const device = {
    initialTrust: dv?.initialTrust ?? d.device.initialTrust,
    missingTrust: dv?.missingTrust ?? d.device.missingTrust,
    posture: {
      managed: { ...d.device.posture.managed, ...dv?.posture?.managed },
      encrypted: { ...d.device.posture.encrypted, ...dv?.posture?.encrypted },
      osUpToDate: { ...d.device.posture.osUpToDate, ...dv?.posture?.osUpToDate },
    },
    events: { ...d.device.events, ...dv?.events },
    retentionDays: dv?.retentionDays ?? d.device.retentionDays,
  }
  if (device.missingTrust > device.initialTrust) {
    doc.fail(['device', 'missingTrust'], 'must not exceed initialTrust: a request without a device is not trusted more than an unknown device')
  }

  const { allowedCountries, ...lo } = v.location ?? {}
  const location = {
    ...d.location,
    ...lo,
    allowedCountries: { tenants: new Map(Object.entries(allowedCountries?.tenants ?? {})), subjects: new Map(Object.entries(allowedCountries?.subjects ?? {})) },
  }

  const behaviour = { ...d.behaviour, ...v.behaviour, weights: { ...d.behaviour.weights, ...v.behaviour?.weights } }

  return { thresholds, scoring, sensitivity, stepUp, device, location, behaviour }
}
