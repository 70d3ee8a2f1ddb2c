/**
 * The engine's vocabulary: what a decision request holds and what a decision answers.
 * Nothing here knows about HTTP; routes, the CLI and adapters translate to and from these types.
 */

export type Verdict = 'allow' | 'deny' | 'step_up'

export const SENSITIVITIES = ['low', 'medium', 'high', 'critical'] as const
export type Sensitivity = (typeof SENSITIVITIES)[number]

export type Attributes = Record<string, unknown>

export interface Subject {
  id: string
  /** Roles asserted by the caller (or a verified token); merged with the policy's role assignments. */
  roles?: string[]
  /** Casbin domain; requests without one use the policy's default domain. */
  tenant?: string
  attributes?: Attributes
}

export interface Resource {
  type: string
  id?: string
  attributes?: Attributes
}

export interface DeviceContext {
  id: string
  managed?: boolean
  encrypted?: boolean
  osUpToDate?: boolean
  [posture: string]: unknown
}

export interface SessionContext {
  id?: string
  /** Time of the last active authentication, epoch seconds. */
  authTime?: number
  /** Authentication methods references (RFC 8176). */
  amr?: string[]
  acr?: string
}

/** The original HTTP request a forward-auth endpoint decides, as the gateway forwarded it. */
export interface HttpRequestFacts {
  method: string
  /** The path without the query, each segment decoded once, one trailing slash dropped: what the route map matched. */
  path: string
}

export interface RequestContext {
  ip?: string
  /** Set by the forward-auth endpoints only (a /decide body cannot name it); policies read it through request.yaml. */
  http?: HttpRequestFacts
  userAgent?: string
  device?: DeviceContext
  session?: SessionContext
  sensitivity?: Sensitivity
}

export interface DecisionRequest {
  subject: Subject
  action: string
  resource: Resource
  context?: RequestContext
  explain?: boolean
}

/** Stable machine codes; never renamed once shipped, only added. */
export const REASON_CODES = [
  'policy_allow',
  'policy_deny',
  'no_matching_policy',
  'policy_error',
  'step_up_required',
  'step_up_satisfied',
  'risk_too_high',
  'new_device',
  'untrusted_device',
  'impossible_travel',
  'country_restricted',
  'high_risk_location',
  'new_country',
  'behavior_anomaly',
  'stale_authentication',
  'no_session',
  'store_unavailable',
  'token_invalid',
  'token_expired',
  'token_revoked',
  'session_revoked',
  'session_expired',
  'account_locked',
  'ip_blocked',
  'account_frozen',
  'jit_grant',
  'suspicious_ip',
  'security_step_up',
  'unmapped_route',
  'bad_request',
  'token_missing',
  'internal_error',
] as const
export type ReasonCode = (typeof REASON_CODES)[number]

/** A policy line that decided the outcome, as the operator wrote it. */
export interface MatchedRule {
  /** Policy type from the model, e.g. `p`. */
  ptype: string
  /** The line's fields, in the order of the model's policy definition. */
  rule: string[]
  /** File and 1-based line where the rule was written, when known. */
  source?: string
}

export interface Explanation {
  effectiveRoles: string[]
  matchedRules: MatchedRule[]
  domain: string
}

export const STEP_UP_LEVELS = ['low', 'medium', 'high'] as const
export type StepUpLevel = (typeof STEP_UP_LEVELS)[number]

export interface StepUp {
  level: StepUpLevel
  /** Acceptable authentication methods, strongest first (e.g. `webauthn`, `totp`). */
  methods: string[]
  /** Maximum age, in seconds, of the authentication that satisfies this step-up. */
  maxAge: number
  /** ACR values to request from the identity provider, in order of preference. */
  acrValues: string[]
}

export interface RiskSignal {
  /** Signal name, e.g. `deviceTrust`, `impossibleTravel`. */
  name: string
  /** The raw observation (trust 0-100, anomaly 0-1, hours, km/h ...). */
  value: unknown
  /** Points this signal added to the score before the sensitivity multiplier. */
  contribution: number
  /** Reason code the signal raised, when it raised one. */
  reason?: ReasonCode
  detail?: string
}

export interface RiskAssessment {
  score: number
  level: 'minimal' | 'low' | 'medium' | 'high'
  sensitivity: Sensitivity
  multiplier: number
  signals: RiskSignal[]
}

export interface Decision {
  decision: Verdict
  decisionId: string
  /** The subject decided for, when it came from a verified token. */
  subject?: { id: string; tenant?: string }
  reasons: ReasonCode[]
  policyVersion: string
  stepUp?: StepUp
  risk?: RiskAssessment
  explanation?: Explanation
}

/** Milliseconds since the epoch. Injected so that time-dependent logic is testable without sleeping. */
export type Clock = () => number
