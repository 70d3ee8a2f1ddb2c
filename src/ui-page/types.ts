/** The shapes of the explorer API's answers, as the page reads them. */
export interface Decision {
  decision: 'allow' | 'deny' | 'step_up'
  decisionId: string
  reasons: string[]
  policyVersion: string
  stepUp?: { level: string; methods: string[]; maxAge: number; acrValues: string[] }
  risk?: { score: number; level: string; sensitivity: string; multiplier: number; signals: { name: string; contribution: number; reason?: string; detail?: string }[] }
  explanation?: { effectiveRoles: string[]; matchedRules: unknown[]; domain: string }
}

export interface Explained {
  decision: Decision
  rules: { ptype: string; rule: string[]; text: string; file?: string; line?: number }[]
  roles: { role: string; sources: string[] }[]
  gateways: { gateway: string; endpoint: string; status: number; headers: Record<string, string> }[]
}

export interface ExplainAnswer {
  request: Record<string, unknown>
  logged?: { decisionId: string; time: string; verdict: string; reasons: string[] }
  masked: string[]
  policy: { role: string; revision: string }
  result: Explained
}

export interface WhatIfAnswer {
  request: Record<string, unknown>
  masked: string[]
  active: { revision: string; result: Explained }
  candidate: { source: 'shadow' | 'edit'; revision: string; base?: string; result: Explained }
  differences: { field: string; active: unknown; candidate: unknown }[]
}

export interface DecisionLine {
  decision_id: string
  time: string
  verdict: string
  reasons: string[]
  subject: string | null
  action: string
  resource: { type: string; id?: string }
  source?: string
}

export interface PolicyStatus {
  activeRevision: string
  engine: string
  ruleCount: number
  lastSuccess: string
  lastError?: { message: string; at: string }
  reloads: { success: number; failure: number }
  watch: { state: string; since: string; reason?: string }
}

/** What to explain: one of the three forms the API takes. */
export type Subject = { request: unknown } | { logLine: string } | { decisionId: string }
