import { REASON_CODES, STEP_UP_LEVELS, type ReasonCode, type StepUpLevel } from '../engine/types.js'
import { parseYamlFile, type YamlFile, type YamlPath } from '../engine/policy/yaml-file.js'
import { SECURITY_EVENT_TYPES, type SecurityEventType } from './events.js'

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
const DETECTOR_KINDS = ['subject_failures', 'ip_subjects', 'subject_countries', 'risk_findings', 'event'] as const
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

type Obj = Record<string, unknown>

class Reader {
  constructor(readonly yaml: YamlFile) {}

  map(path: YamlPath, value: unknown, keys: readonly string[]): Obj {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.yaml.fail(path, 'must be a mapping')
    for (const key of Object.keys(value as Obj)) {
      if (!keys.includes(key)) this.yaml.fail([...path, key], `unknown key "${key}" (expected one of ${keys.join(', ')})`)
    }
    return value as Obj
  }

  int(path: YamlPath, value: unknown, min: number, max: number, fallback?: number): number {
    if (value === undefined && fallback !== undefined) return fallback
    if (typeof value !== 'number' || !Number.isInteger(value)) this.yaml.fail(path, 'must be a whole number')
    if ((value as number) < min || (value as number) > max) this.yaml.fail(path, `must be between ${min} and ${max}`)
    return value as number
  }

  ratio(path: YamlPath, value: unknown): number {
    if (typeof value !== 'number' || value < 0 || value > 1) this.yaml.fail(path, 'must be a number between 0 and 1')
    return value as number
  }

  oneOf<T extends string>(path: YamlPath, value: unknown, allowed: readonly T[], fallback?: T): T {
    if (value === undefined && fallback !== undefined) return fallback
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) this.yaml.fail(path, `must be one of ${allowed.join(', ')}`)
    return value as T
  }

  list<T extends string>(path: YamlPath, value: unknown, allowed: readonly T[], fallback?: T[]): T[] {
    if (value === undefined && fallback !== undefined) return fallback
    if (!Array.isArray(value) || value.length === 0) this.yaml.fail(path, 'must be a non-empty list')
    return (value as unknown[]).map((item, i) => this.oneOf([...path, i], item, allowed))
  }
}

function readDetector(r: Reader, path: YamlPath, value: unknown): Detector {
  const head = r.map(path, value, ['kind', 'events', 'threshold', 'windowSeconds', 'resetOn', 'minCountries', 'minEvents', 'reasons', 'match', 'behaviourAnomalyAtLeast'])
  const kind = r.oneOf([...path, 'kind'], head.kind, DETECTOR_KINDS)
  const at = (key: string) => [...path, key]
  const window = () => r.int(at('windowSeconds'), head.windowSeconds, 1, 30 * DAY)
  switch (kind) {
    case 'subject_failures':
      r.map(path, value, ['kind', 'events', 'threshold', 'windowSeconds', 'resetOn'])
      return {
        kind,
        events: r.list(at('events'), head.events, SECURITY_EVENT_TYPES),
        threshold: r.int(at('threshold'), head.threshold, 1, 100_000),
        windowSeconds: window(),
        resetOn: head.resetOn === undefined ? ['login_success'] : Array.isArray(head.resetOn) && head.resetOn.length === 0 ? [] : r.list(at('resetOn'), head.resetOn, SECURITY_EVENT_TYPES),
      }
    case 'ip_subjects':
      r.map(path, value, ['kind', 'events', 'threshold', 'windowSeconds'])
      return { kind, events: r.list(at('events'), head.events, SECURITY_EVENT_TYPES), threshold: r.int(at('threshold'), head.threshold, 1, 100_000), windowSeconds: window() }
    case 'subject_countries': {
      r.map(path, value, ['kind', 'minCountries', 'minEvents', 'windowSeconds'])
      const minCountries = r.int(at('minCountries'), head.minCountries, 2, 250)
      const minEvents = r.int(at('minEvents'), head.minEvents, 2, 10_000)
      if (minEvents < minCountries) r.yaml.fail(at('minEvents'), 'must be at least minCountries')
      return { kind, minCountries, minEvents, windowSeconds: window() }
    }
    case 'risk_findings': {
      r.map(path, value, ['kind', 'reasons', 'match', 'behaviourAnomalyAtLeast'])
      const detector: Detector = {
        kind,
        reasons: head.reasons === undefined ? [] : r.list(at('reasons'), head.reasons, REASON_CODES),
        match: r.oneOf(at('match'), head.match, ['any', 'all'] as const, 'any'),
      }
      if (head.behaviourAnomalyAtLeast !== undefined) detector.behaviourAnomalyAtLeast = r.ratio(at('behaviourAnomalyAtLeast'), head.behaviourAnomalyAtLeast)
      if (detector.reasons.length === 0 && detector.behaviourAnomalyAtLeast === undefined) r.yaml.fail(path, 'needs reasons or behaviourAnomalyAtLeast')
      return detector
    }
    case 'event':
      r.map(path, value, ['kind', 'events'])
      return { kind, events: r.list(at('events'), head.events, SECURITY_EVENT_TYPES) }
  }
}

/** An action is a bare name (`notify`) or a one-key mapping of name to settings (`lockout: { durationSeconds: 900 }`). */
function readAction(r: Reader, path: YamlPath, value: unknown): ResponseAction {
  let type: string
  let settings: Obj = {}
  if (typeof value === 'string') type = value
  else {
    const entry = r.map(path, value, ACTION_TYPES)
    const keys = Object.keys(entry)
    if (keys.length !== 1) r.yaml.fail(path, `an action is one of ${ACTION_TYPES.join(', ')}, alone`)
    type = keys[0]!
    const inner = entry[type]
    if (inner !== null && inner !== undefined) settings = r.map([...path, type], inner, ['durationSeconds', 'level', 'mode'])
  }
  const at = (key: string) => [...path, type, key]
  const keysOnly = (allowed: string[]) => r.map([...path, type], settings, allowed)
  const duration = (fallback?: number) => r.int(at('durationSeconds'), settings.durationSeconds, 1, 365 * DAY, fallback)
  switch (r.oneOf(path, type, ACTION_TYPES)) {
    case 'lockout':
      keysOnly(['durationSeconds'])
      return { type: 'lockout', durationSeconds: duration(900) }
    case 'revoke_sessions':
      keysOnly([])
      return { type: 'revoke_sessions' }
    case 'freeze': {
      keysOnly(['durationSeconds'])
      return settings.durationSeconds === undefined ? { type: 'freeze' } : { type: 'freeze', durationSeconds: duration() }
    }
    case 'require_step_up':
      keysOnly(['durationSeconds', 'level'])
      return { type: 'require_step_up', level: r.oneOf(at('level'), settings.level, STEP_UP_LEVELS, 'high'), durationSeconds: duration(3600) }
    case 'block_ip':
      keysOnly(['durationSeconds', 'level', 'mode'])
      return {
        type: 'block_ip',
        mode: r.oneOf(at('mode'), settings.mode, ['deny', 'step_up'] as const, 'deny'),
        level: r.oneOf(at('level'), settings.level, STEP_UP_LEVELS, 'high'),
        durationSeconds: duration(3600),
      }
    case 'notify':
      keysOnly([])
      return { type: 'notify' }
  }
}

/** Parses response.yaml; problems are PolicyFileErrors naming file and line. */
export function parseResponsePolicy(text: string, file = 'response.yaml'): ResponsePolicy {
  const yaml = parseYamlFile(text, file)
  const r = new Reader(yaml)
  const root = r.map([], yaml.value ?? {}, ['rules'])
  if (root.rules === undefined || root.rules === null) return { rules: [] }
  const rulesMap = r.map(['rules'], root.rules, Object.keys(root.rules as Obj))
  const rules: ResponseRule[] = []
  for (const [name, value] of Object.entries(rulesMap)) {
    const path = ['rules', name]
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) yaml.fail(path, 'a rule name is lower case letters, digits and _, starting with a letter')
    const body = r.map(path, value, ['enabled', 'detect', 'actions', 'cooldownSeconds'])
    if (body.enabled !== undefined && typeof body.enabled !== 'boolean') yaml.fail([...path, 'enabled'], 'must be true or false')
    const detect = readDetector(r, [...path, 'detect'], body.detect)
    if (!Array.isArray(body.actions) || body.actions.length === 0) yaml.fail([...path, 'actions'], 'must be a non-empty list')
    const actions = (body.actions as unknown[]).map((a, i) => readAction(r, [...path, 'actions', i], a))
    if (detect.kind === 'ip_subjects') {
      const i = actions.findIndex((a) => SUBJECT_ACTIONS.has(a.type))
      if (i >= 0) yaml.fail([...path, 'actions', i], `${actions[i]!.type} needs a subject; an ip_subjects rule can only block_ip and notify`)
    }
    const cooldownSeconds = r.int([...path, 'cooldownSeconds'], body.cooldownSeconds, 0, 30 * DAY, 'windowSeconds' in detect ? detect.windowSeconds : 3600)
    if (body.enabled === false) continue
    rules.push({ name, detect, actions, cooldownSeconds })
  }
  return { rules }
}
