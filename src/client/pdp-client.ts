import { LRUCache } from 'lru-cache'
import { decisionId } from '../engine/ids.js'
import type { BatchInput, BatchItem, DecisionInput, PlanInput } from '../engine/pdp.js'
import { isPlanFilter } from '../engine/plan/filter.js'
import type { Plan } from '../engine/plan/settle.js'
import type { Clock, Decision, ReasonCode } from '../engine/types.js'
import { inputKey } from './cache-key.js'

/** The reason of a deny the client made up itself because the PDP gave no usable answer. */
export const PDP_UNAVAILABLE = 'pdp_unavailable'

/** The PDP's reason codes (a newer PDP may send codes this list lacks) plus the client's own. */
export type ClientReason = ReasonCode | typeof PDP_UNAVAILABLE

export type PdpFailureKind = 'timeout' | 'network' | 'status' | 'malformed' | 'input' | 'credential'

/** Why the client denied on its own. Safe to log: it never holds a credential. */
export interface PdpFailure {
  kind: PdpFailureKind
  /** The PDP's HTTP status, for kind `status`. */
  status?: number
  message: string
}

export interface ClientDecision extends Omit<Decision, 'reasons'> {
  reasons: ClientReason[]
  /** Present only on the client's own deny (fail closed): the PDP was not reached in time or answered unusably. */
  failure?: PdpFailure
}

export interface ClientPlan extends Omit<Plan, 'reasons'> {
  reasons: ClientReason[]
  /** Present only on the client's own always_denied (fail closed): the PDP was not reached in time or answered unusably. */
  failure?: PdpFailure
}

export interface PdpClientOptions {
  /** Where the PDP listens, e.g. `http://pdp:8080` (a path prefix is kept). */
  baseUrl: string | URL
  /** Longest wait for one answer, body included, before denying. Default 250. */
  timeoutMs?: number
  /**
   * The calling service's own credential for a PDP run with `PDP_DECIDE_AUTH=token`, sent as
   * `Authorization: Bearer`. A function is asked before every request, so a rotating credential works.
   * Not to be confused with `DecisionInput.token`, the end user's token the PDP verifies.
   */
  token?: string | (() => string | Promise<string>)
  /**
   * Remember `allow` verdicts for `ttlMs`, keyed by the whole input, at most `max` of them. A hit is not
   * seen by the PDP (no decision-log line, no behaviour learning, no revocation check), so keep it short.
   */
  cache?: { ttlMs: number; max: number }
  /** Defaults to the global fetch. */
  fetch?: typeof fetch
  /** Clock for cache expiry and the ids of the client's own denies. Defaults to Date.now. */
  now?: Clock
}

export interface PdpClient {
  /** Never rejects: a PDP that is slow, unreachable or confused gives a deny with `failure` set. */
  decide(input: DecisionInput): Promise<ClientDecision>
  /** One verdict per item, in order; items with a cached allow are not sent. Never rejects. */
  decideBatch(input: BatchInput, items: readonly BatchItem[]): Promise<ClientDecision[]>
  /**
   * Which resources of a type the subject may act on (POST /plan); turn the answer into a query with planToSql,
   * planToPrisma or planPredicate. Never rejects, and is never cached: a failure gives always_denied with `failure` set.
   */
  plan(input: PlanInput): Promise<ClientPlan>
}

export const DEFAULT_TIMEOUT_MS = 250

type Exchange = { ok: true; body: unknown } | { ok: false; failure: PdpFailure }

const VERDICTS: ReadonlySet<unknown> = new Set(['allow', 'deny', 'step_up'])

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string')

function isStepUp(value: unknown): boolean {
  return (
    isRecord(value) &&
    typeof value.level === 'string' &&
    isStringArray(value.methods) &&
    typeof value.maxAge === 'number' &&
    Number.isFinite(value.maxAge) &&
    isStringArray(value.acrValues)
  )
}

/** The body as a decision, or undefined when it lacks what callers rely on (a step-up must say how to step up). */
function asDecision(value: unknown): ClientDecision | undefined {
  if (!isRecord(value)) return undefined
  if (!VERDICTS.has(value.decision) || typeof value.decisionId !== 'string' || typeof value.policyVersion !== 'string') return undefined
  if (!isStringArray(value.reasons)) return undefined
  if (value.decision === 'step_up' ? !isStepUp(value.stepUp) : value.stepUp !== undefined && !isStepUp(value.stepUp)) return undefined
  return value as unknown as ClientDecision
}

const PLAN_KINDS: ReadonlySet<unknown> = new Set(['always_allowed', 'always_denied', 'conditional', 'unsupported'])

/** The body as a plan, or undefined when it lacks what callers rely on (a conditional plan needs a well-formed filter). */
function asPlan(value: unknown): ClientPlan | undefined {
  if (!isRecord(value)) return undefined
  if (!PLAN_KINDS.has(value.plan) || typeof value.decisionId !== 'string' || typeof value.policyVersion !== 'string') return undefined
  if (!isStringArray(value.reasons)) return undefined
  if (value.plan === 'conditional' ? !isPlanFilter(value.filter) : value.filter !== undefined) return undefined
  if (value.stepUp !== undefined && !isStepUp(value.stepUp)) return undefined
  return value as unknown as ClientPlan
}

/** A short, credential-free description of a fetch rejection: the system error code, never the message. */
function networkMessage(error: unknown): string {
  const cause = isRecord(error) ? error.cause : undefined
  const code = isRecord(cause) ? cause.code : undefined
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? `network error (${code})` : 'network error'
}

/** The PDP's error body names the problem (code, field) and never echoes credentials; keep it brief. */
function statusMessage(status: number, text: string): string {
  let detail = ''
  try {
    const body: unknown = JSON.parse(text)
    if (isRecord(body) && typeof body.code === 'string' && typeof body.message === 'string') detail = ` (${body.code}: ${body.message.slice(0, 200)})`
  } catch {
    // Not the PDP's JSON error: the status alone has to do.
  }
  return `PDP answered ${status}${detail}`
}

function checkOptions(options: PdpClientOptions): { root: string; timeoutMs: number } {
  const base = new URL(String(options.baseUrl))
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('baseUrl must be an http or https URL')
  if (base.username !== '' || base.password !== '') throw new TypeError('baseUrl must not carry credentials; pass the caller credential as token')
  base.search = ''
  base.hash = ''
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError('timeoutMs must be a positive number')
  if (options.cache) {
    const { ttlMs, max } = options.cache
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new TypeError('cache.ttlMs must be a positive number')
    if (!Number.isInteger(max) || max < 1) throw new TypeError('cache.max must be a positive integer')
  }
  return { root: base.href.replace(/\/+$/, ''), timeoutMs }
}

/**
 * A client for services that ask the PDP. Every failure (timeout, refused connection, non-2xx, a body that
 * is not a decision) becomes a deny with reason `pdp_unavailable` and `failure` set, so a request path that
 * awaits it never sees an exception and never lets a request through by accident.
 */
export function createPdpClient(options: PdpClientOptions): PdpClient {
  const { root, timeoutMs } = checkOptions(options)
  const fetchFn = options.fetch ?? globalThis.fetch
  const now = options.now ?? Date.now
  const cacheTtlMs = options.cache?.ttlMs ?? 0
  const cache = options.cache ? new LRUCache<string, { decision: ClientDecision; expiresAt: number }>({ max: options.cache.max }) : undefined

  const failClosed = (failure: PdpFailure): ClientDecision => ({
    decision: 'deny',
    decisionId: decisionId(now()),
    reasons: [PDP_UNAVAILABLE],
    policyVersion: '',
    failure,
  })

  const failPlan = (failure: PdpFailure): ClientPlan => {
    const { decision: _verdict, ...denied } = failClosed(failure)
    return { ...denied, plan: 'always_denied' }
  }

  // Copies in and out, so that a caller changing a decision it was given cannot change what others get.
  const cached = (key: string | undefined): ClientDecision | undefined => {
    if (!cache || key === undefined) return undefined
    const entry = cache.get(key)
    if (!entry) return undefined
    if (entry.expiresAt <= now()) {
      cache.delete(key)
      return undefined
    }
    return structuredClone(entry.decision)
  }
  const remember = (key: string | undefined, decision: ClientDecision) => {
    if (cache && key !== undefined && decision.decision === 'allow' && !decision.failure) {
      cache.set(key, { decision: structuredClone(decision), expiresAt: now() + cacheTtlMs })
    }
  }

  const authorization = async (): Promise<string | undefined> => {
    const token = typeof options.token === 'function' ? await options.token() : options.token
    return token === undefined ? undefined : `Bearer ${token}`
  }

  const exchange = async (path: string, payload: string, signal: AbortSignal): Promise<Exchange> => {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' }
    try {
      const auth = await authorization()
      if (auth !== undefined) headers.authorization = auth
    } catch {
      return { ok: false, failure: { kind: 'credential', message: 'the caller credential could not be obtained' } }
    }
    let response: Response
    let text: string
    try {
      // The PDP never redirects; following one could carry the credential somewhere else.
      response = await fetchFn(`${root}${path}`, { method: 'POST', headers, body: payload, signal, redirect: 'error' })
      text = await response.text()
    } catch (error) {
      return { ok: false, failure: { kind: 'network', message: networkMessage(error) } }
    }
    if (response.status < 200 || response.status > 299) {
      return { ok: false, failure: { kind: 'status', status: response.status, message: statusMessage(response.status, text) } }
    }
    try {
      return { ok: true, body: JSON.parse(text) as unknown }
    } catch {
      return { ok: false, failure: { kind: 'malformed', message: 'the PDP answered with a body that is not JSON' } }
    }
  }

  /** One POST with a deadline that holds even if a supplied fetch ignores its abort signal. */
  const post = async (path: string, payload: string): Promise<Exchange> => {
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<Exchange>((resolve) => {
      timer = setTimeout(() => {
        controller.abort()
        resolve({ ok: false, failure: { kind: 'timeout', message: `no answer from the PDP within ${timeoutMs} ms` } })
      }, timeoutMs)
    })
    try {
      return await Promise.race([exchange(path, payload, controller.signal), deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  return {
    async decide(input) {
      let key: string | undefined
      let payload: string
      try {
        key = cache ? inputKey(input) : undefined
        payload = JSON.stringify(input)
      } catch {
        return failClosed({ kind: 'input', message: 'the decision input cannot be serialised as JSON' })
      }
      const hit = cached(key)
      if (hit) return hit
      const answer = await post('/decide', payload)
      if (!answer.ok) return failClosed(answer.failure)
      const decision = asDecision(answer.body)
      if (!decision) return failClosed({ kind: 'malformed', message: 'the PDP answered with a body that is not a decision' })
      remember(key, decision)
      return decision
    },

    async plan(input) {
      let payload: string
      try {
        payload = JSON.stringify(input)
      } catch {
        return failPlan({ kind: 'input', message: 'the plan input cannot be serialised as JSON' })
      }
      const answer = await post('/plan', payload)
      if (!answer.ok) return failPlan(answer.failure)
      return asPlan(answer.body) ?? failPlan({ kind: 'malformed', message: 'the PDP answered with a body that is not a plan' })
    },

    async decideBatch(input, items) {
      const results: ClientDecision[] = []
      const keys: (string | undefined)[] = []
      const pending: number[] = []
      let payload: string
      try {
        // Same key as decide() with the item's action and resource, so single and batch answers share the cache.
        for (const item of items) keys.push(cache ? inputKey({ ...input, action: item.action, resource: item.resource }) : undefined)
        items.forEach((_, i) => {
          const hit = cached(keys[i])
          if (hit) results[i] = hit
          else pending.push(i)
        })
        if (pending.length === 0) return results
        // Only what the PDP's item schema allows: extra members would turn the whole batch into a 400.
        payload = JSON.stringify({ ...input, items: pending.map((i) => ({ action: items[i]!.action, resource: items[i]!.resource })) })
      } catch {
        return items.map(() => failClosed({ kind: 'input', message: 'the decision input cannot be serialised as JSON' }))
      }
      const answer = await post('/decide/batch', payload)
      const body = answer.ok ? answer.body : undefined
      const decisions = isRecord(body) && Array.isArray(body.decisions) ? body.decisions.map(asDecision) : []
      const usable = decisions.length === pending.length && decisions.every((d) => d !== undefined)
      pending.forEach((index, j) => {
        if (!answer.ok) results[index] = failClosed(answer.failure)
        else if (!usable) results[index] = failClosed({ kind: 'malformed', message: 'the PDP answered with a body that is not one decision per item' })
        else {
          results[index] = decisions[j]!
          remember(keys[index], decisions[j]!)
        }
      })
      return results
    },
  }
}
