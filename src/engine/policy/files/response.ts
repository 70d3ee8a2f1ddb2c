import { Type, type Static, type TSchema } from 'typebox'
import { REASON_CODES, STEP_UP_LEVELS, type ReasonCode, type StepUpLevel } from '../../types.js'
import { SECURITY_EVENT_TYPES, type SecurityEventType } from '../../security-events.js'
import { readYamlDocument } from '../yaml-reader.js'

/** What makes a rule fire. Windows slide over the last `windowSeconds`. */
export type Detector =
  /** At least `threshold` of `events` for one subject within the window; `resetOn` events clear the count. */
  | { kind: 'subject_failures'; events: SecurityEventType[]; threshold: number; windowSeconds: number; resetOn: SecurityEventType[] }
  /** At least `threshold` distinct subjects with `events` from one IP address within the window. */
  | { kind: 'ip_subjects'; events: SecurityEventType[]; threshold: number; windowSeconds: number }
  /** At least `minEvents` located events of one subject within the window, spread over at least `minCountries` countries. */
  | { kind: 'subject_countries'; minCountries: number; minEvents: number; windowSeconds: number }
  /** A decision's risk named `reasons` (any of them, or all with `match: all`), or its behaviour anomaly reached `behaviourAnomalyAtLeast`. */
  | { kind: 'risk_findings'; reasons: ReasonCode[]; match: 'any' | 'all'; behaviourAnomalyAtLeast?: number }
  /** Every event of these types. */
  | { kind: 'event'; events: SecurityEventType[] }

export type ResponseAction =
  | { type: 'lockout'; durationSeconds: number }
  | { type: 'revoke_sessions' }
  | { type: 'freeze'; durationSeconds?: number }
  | { type: 'require_step_up'; level: StepUpLevel; durationSeconds: number }
  | { type: 'block_ip'; mode: 'deny' | 'step_up'; level: StepUpLevel; durationSeconds: number }
  | { type: 'notify' }

export const ACTION_TYPES = ['lockout', 'revoke_sessions', 'freeze', 'require_step_up', 'block_ip', 'notify'] as const
/** Actions that need a subject; an IP-address rule has none to aim them at. */
const SUBJECT_ACTIONS: ReadonlySet<string> = new Set(['lockout', 'revoke_sessions', 'freeze', 'require_step_up'])

export interface ResponseRule {
  name: string
  detect: Detector
  actions: ResponseAction[]
  /** After firing for a target, the rule stays quiet for that target this long. */
  cooldownSeconds: number
}

export interface ResponsePolicy {
  rules: ResponseRule[]
}

const DAY = 86_400

/** The reference rules; also what applies when response.yaml is absent. */
export const DEFAULT_RESPONSE_POLICY: ResponsePolicy = {
  rules: [
    {
      name: 'brute_force',
      detect: { kind: 'subject_failures', events: ['login_failure', 'mfa_failure'], threshold: 5, windowSeconds: 300, resetOn: ['login_success'] },
      actions: [{ type: 'lockout', durationSeconds: 900 }, { type: 'notify' }],
      cooldownSeconds: 300,
    },
    {
      name: 'credential_stuffing',
      detect: { kind: 'ip_subjects', events: ['login_failure'], threshold: 10, windowSeconds: 3600 },
      actions: [{ type: 'block_ip', mode: 'step_up', level: 'high', durationSeconds: 3600 }, { type: 'notify' }],
      cooldownSeconds: 3600,
    },
    {
      name: 'account_takeover',
      detect: { kind: 'risk_findings', reasons: ['impossible_travel', 'new_device'], match: 'all', behaviourAnomalyAtLeast: 0.9 },
      actions: [{ type: 'revoke_sessions' }, { type: 'freeze' }, { type: 'notify' }],
      cooldownSeconds: 3600,
    },
    {
      name: 'location_pattern',
      detect: { kind: 'subject_countries', minCountries: 3, minEvents: 5, windowSeconds: DAY },
      actions: [{ type: 'require_step_up', level: 'high', durationSeconds: 3600 }, { type: 'notify' }],
      cooldownSeconds: 3600,
    },
  ],
}

const closed = <P extends Record<string, TSchema>>(properties: P) => Type.Object(properties, { additionalProperties: false })
const events = Type.Array(Type.Enum(SECURITY_EVENT_TYPES), { minItems: 1 })
const window = Type.Integer({ minimum: 1, maximum: 30 * DAY })
const count = Type.Integer({ minimum: 1, maximum: 100_000 })
const duration = Type.Optional(Type.Integer({ minimum: 1, maximum: 365 * DAY }))
const stepUpLevel = Type.Optional(Type.Enum(STEP_UP_LEVELS, { default: 'high' }))
/** An action's settings; a bare `- notify` or `- lockout:` takes the defaults. */
const settings = <P extends Record<string, TSchema>>(properties: P) => Type.Optional(Type.Union([Type.Null(), closed(properties)]))

/** What makes a rule fire, told apart by `kind`. */
const DetectorSchema = Type.Union([
  closed({
    kind: Type.Literal('subject_failures'),
    events,
    threshold: count,
    windowSeconds: window,
    resetOn: Type.Optional(Type.Array(Type.Enum(SECURITY_EVENT_TYPES), { default: ['login_success'] })),
  }),
  closed({ kind: Type.Literal('ip_subjects'), events, threshold: count, windowSeconds: window }),
  closed({
    kind: Type.Literal('subject_countries'),
    minCountries: Type.Integer({ minimum: 2, maximum: 250 }),
    minEvents: Type.Integer({ minimum: 2, maximum: 10_000 }),
    windowSeconds: window,
  }),
  closed({
    kind: Type.Literal('risk_findings'),
    reasons: Type.Optional(Type.Array(Type.Enum(REASON_CODES), { minItems: 1 })),
    match: Type.Optional(Type.Enum(['any', 'all'], { default: 'any' })),
    behaviourAnomalyAtLeast: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  }),
  closed({ kind: Type.Literal('event'), events }),
])

/** An action is a bare name (`notify`) or a one-key mapping of name to settings (`lockout: { durationSeconds: 900 }`). */
const ActionSchema = Type.Union(
  [
    Type.Enum(ACTION_TYPES),
    Type.Object(
      {
        lockout: settings({ durationSeconds: duration }),
        revoke_sessions: settings({}),
        freeze: settings({ durationSeconds: duration }),
        require_step_up: settings({ durationSeconds: duration, level: stepUpLevel }),
        block_ip: settings({ durationSeconds: duration, level: stepUpLevel, mode: Type.Optional(Type.Enum(['deny', 'step_up'], { default: 'deny' })) }),
        notify: settings({}),
      },
      { additionalProperties: false, minProperties: 1, maxProperties: 1 },
    ),
  ],
  { errorMessage: `must be an action: one of ${ACTION_TYPES.join(', ')}, alone or with its settings` },
)

/** response.yaml as written. */
export const ResponseFileSchema = Type.Object(
  {
    rules: Type.Optional(
      Type.Record(
        Type.String(),
        closed({
          enabled: Type.Optional(Type.Boolean({ default: true })),
          detect: DetectorSchema,
          actions: Type.Array(ActionSchema, { minItems: 1 }),
          cooldownSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * DAY })),
        }),
        {
          propertyNames: {
            pattern: '^[a-z][a-z0-9_]{0,62}$',
            patternErrorMessage: 'must be a rule name: lower case letters, digits and _, starting with a letter',
          },
        },
      ),
    ),
  },
  { additionalProperties: false, title: 'response.yaml', description: 'Detection rules and response playbooks of the zt-pdp policy directory.' },
)

type WrittenAction = Static<typeof ActionSchema>

function toAction(written: WrittenAction): ResponseAction {
  const [type, given] = typeof written === 'string' ? [written, null] : Object.entries(written)[0]!
  const s = (given ?? {}) as { durationSeconds?: number; level?: StepUpLevel; mode?: 'deny' | 'step_up' }
  switch (type as (typeof ACTION_TYPES)[number]) {
    case 'lockout':
      return { type: 'lockout', durationSeconds: s.durationSeconds ?? 900 }
    case 'revoke_sessions':
      return { type: 'revoke_sessions' }
    case 'freeze':
      return s.durationSeconds === undefined ? { type: 'freeze' } : { type: 'freeze', durationSeconds: s.durationSeconds }
    case 'require_step_up':
      return { type: 'require_step_up', level: s.level ?? 'high', durationSeconds: s.durationSeconds ?? 3600 }
    case 'block_ip':
      return { type: 'block_ip', mode: s.mode ?? 'deny', level: s.level ?? 'high', durationSeconds: s.durationSeconds ?? 3600 }
    case 'notify':
      return { type: 'notify' }
  }
}

/** Parses response.yaml; problems are PolicyFileErrors naming file and line. */
export function parseResponsePolicy(text: string, file = 'response.yaml'): ResponsePolicy {
  const doc = readYamlDocument(ResponseFileSchema, text, file)
  const rules: ResponseRule[] = []
  for (const [name, rule] of Object.entries(doc.value.rules ?? {})) {
    const path = ['rules', name]
    const written = rule.detect
    let detect: Detector
    switch (written.kind) {
      case 'subject_failures':
        detect = { ...written, resetOn: written.resetOn ?? ['login_success'] }
        break
      case 'subject_countries':
        if (written.minEvents < written.minCountries) doc.fail([...path, 'detect', 'minEvents'], 'must be at least minCountries')
        detect = written
        break
      case 'risk_findings': {
        detect = { kind: written.kind, reasons: written.reasons ?? [], match: written.match ?? 'any' }
        if (written.behaviourAnomalyAtLeast !== undefined) detect.behaviourAnomalyAtLeast = written.behaviourAnomalyAtLeast
        if (detect.reasons.length === 0 && written.behaviourAnomalyAtLeast === undefined) doc.fail([...path, 'detect'], 'needs reasons or behaviourAnomalyAtLeast')
        break
      }
      default:
        detect = written
    }
    const actions = rule.actions.map(toAction)
    if (detect.kind === 'ip_subjects') {
      const i = actions.findIndex((a) => SUBJECT_ACTIONS.has(a.type))
      if (i >= 0) doc.fail([...path, 'actions', i], `${actions[i]!.type} needs a subject; an ip_subjects rule can only block_ip and notify`)
    }
    const cooldownSeconds = rule.cooldownSeconds ?? ('windowSeconds' in detect ? detect.windowSeconds : 3600)
    if (rule.enabled === false) continue
    rules.push({ name, detect, actions, cooldownSeconds })
  }
  return { rules }
}
