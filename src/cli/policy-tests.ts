import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import { randomUUID } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { assemblePdp } from '../compose.js'
import type { DecisionInput, Pdp } from '../engine/pdp.js'
import type { PolicyBundle } from '../engine/policy/bundle.js'
import { PolicyFileError } from '../engine/policy/policy-files.js'
import { parseYamlFile, type YamlFile } from '../engine/policy/yaml-file.js'
import { createGeoipLookup, type GeoLookup } from '../engine/risk/geo.js'
import type { Decision } from '../engine/types.js'
import { createTokenVerifier } from '../identity/token-verifier.js'
import { SECURITY_EVENT_TYPES, type SecurityEvent } from '../response/events.js'
import { createResponder } from '../response/responder.js'
import { MemoryStateStore } from '../store/memory-store.js'

/**
 * Policy test suites: YAML files in `<policy dir>/tests/`, each a list of cases (an input and the
 * expected decision) run in order against the policy with a fresh embedded store per suite, so a
 * suite may build up state (failed logins, a first location) for the cases after it.
 */

const ISSUER = 'https://policy-tests.pdp.invalid'
const AUDIENCE = 'pdp-policy-tests'
const DEFAULT_NOW = '2026-03-01T12:00:00Z'

export interface Expectation {
  decision: Decision['decision']
  /** Exactly these reasons, in order. */
  reasons?: string[]
  /** These reasons among the decision's, in any order. */
  reasonsInclude?: string[]
  stepUpLevel?: string
}

/** A step before a case's own input: a security event, an earlier decision, or time passing. */
export type Given = { event: Omit<SecurityEvent, 'time'>; times: number } | { decide: CaseInput } | { advanceSeconds: number }

/** A case's input: a decision request, with `token` as the claims of a token the runner signs. */
export type CaseInput = Omit<DecisionInput, 'token'> & { token?: JWTPayload }

export interface PolicyCase {
  name: string
  line: number | undefined
  /** Absolute time of this case (ISO 8601); otherwise the suite's clock as it stands. */
  at?: number
  given: Given[]
  input: CaseInput
  expect: Expectation
}

export interface PolicySuite {
  file: string
  description: string
  start: number
  cases: PolicyCase[]
}

export interface CaseResult {
  name: string
  file: string
  line: number | undefined
  ok: boolean
  /** What differed, for a failure. */
  problems: string[]
  got: Decision
}

const obj = (yaml: YamlFile, path: (string | number)[], value: unknown): Record<string, unknown> => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) yaml.fail(path, 'must be a mapping')
  return value as Record<string, unknown>
}

function time(yaml: YamlFile, path: (string | number)[], value: unknown): number {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN
  if (Number.isNaN(ms)) yaml.fail(path, 'must be an ISO 8601 time such as 2026-03-01T12:00:00Z')
  return ms
}

function only(yaml: YamlFile, path: (string | number)[], value: Record<string, unknown>, keys: string[]): void {
  for (const key of Object.keys(value)) if (!keys.includes(key)) yaml.fail([...path, key], `unknown key "${key}" (expected one of ${keys.join(', ')})`)
}

function readInput(yaml: YamlFile, path: (string | number)[], value: unknown, defaults: Record<string, unknown>): CaseInput {
  const input = obj(yaml, path, value)
  only(yaml, path, input, ['subject', 'token', 'action', 'resource', 'context', 'explain'])
  if ((input.subject === undefined) === (input.token === undefined)) yaml.fail(path, 'needs exactly one of subject or token (claims)')
  if (typeof input.action !== 'string' || input.action === '') yaml.fail([...path, 'action'], 'must be a non-empty string')
  const resource = obj(yaml, [...path, 'resource'], input.resource)
  if (typeof resource.type !== 'string' || resource.type === '') yaml.fail([...path, 'resource', 'type'], 'must be a non-empty string')
  if (input.subject !== undefined) {
    const subject = obj(yaml, [...path, 'subject'], input.subject)
    if (typeof subject.id !== 'string' || subject.id === '') yaml.fail([...path, 'subject', 'id'], 'must be a non-empty string')
  }
  if (input.token !== undefined) obj(yaml, [...path, 'token'], input.token)
  return { ...(input.context === undefined && defaults.context !== undefined ? { context: defaults.context } : {}), ...input } as CaseInput
}

function readGiven(yaml: YamlFile, path: (string | number)[], value: unknown, defaults: Record<string, unknown>): Given {
  const step = obj(yaml, path, value)
  if ('event' in step) {
    only(yaml, path, step, ['event', 'times'])
    const event = obj(yaml, [...path, 'event'], step.event)
    only(yaml, [...path, 'event'], event, ['type', 'subject', 'tenant', 'ip', 'deviceId', 'sessionId', 'userAgent'])
    if (!(SECURITY_EVENT_TYPES as readonly unknown[]).includes(event.type)) yaml.fail([...path, 'event', 'type'], `must be one of ${SECURITY_EVENT_TYPES.join(', ')}`)
    if (typeof event.subject !== 'string' || event.subject === '') yaml.fail([...path, 'event', 'subject'], 'must be a non-empty string')
    const times = step.times ?? 1
    if (typeof times !== 'number' || !Number.isInteger(times) || times < 1 || times > 1000) yaml.fail([...path, 'times'], 'must be a whole number from 1 to 1000')
    return { event: event as unknown as Omit<SecurityEvent, 'time'>, times: times as number }
  }
  if ('decide' in step) {
    only(yaml, path, step, ['decide'])
    return { decide: readInput(yaml, [...path, 'decide'], step.decide, defaults) }
  }
  if ('advanceSeconds' in step) {
    only(yaml, path, step, ['advanceSeconds'])
    if (typeof step.advanceSeconds !== 'number' || step.advanceSeconds < 0) yaml.fail([...path, 'advanceSeconds'], 'must be a number of seconds, 0 or more')
    return { advanceSeconds: step.advanceSeconds }
  }
  return yaml.fail(path, 'a given step is one of event, decide or advanceSeconds')
}

/** Parses one suite file; mistakes are PolicyFileErrors naming file and line. */
export function parsePolicySuite(text: string, file: string): PolicySuite {
  const yaml = parseYamlFile(text, file)
  const root = obj(yaml, [], yaml.value)
  only(yaml, [], root, ['description', 'now', 'defaults', 'cases'])
  const defaults = root.defaults === undefined ? {} : obj(yaml, ['defaults'], root.defaults)
  only(yaml, ['defaults'], defaults, ['context'])
  if (!Array.isArray(root.cases) || root.cases.length === 0) yaml.fail(['cases'], 'must be a non-empty list')
  const cases = (root.cases as unknown[]).map((value, i): PolicyCase => {
    const path = ['cases', i]
    const c = obj(yaml, path, value)
    only(yaml, path, c, ['name', 'at', 'given', 'input', 'expect'])
    if (typeof c.name !== 'string' || c.name === '') yaml.fail([...path, 'name'], 'must be a non-empty string')
    const expect = obj(yaml, [...path, 'expect'], c.expect)
    only(yaml, [...path, 'expect'], expect, ['decision', 'reasons', 'reasonsInclude', 'stepUpLevel'])
    if (!['allow', 'deny', 'step_up'].includes(expect.decision as string)) yaml.fail([...path, 'expect', 'decision'], 'must be allow, deny or step_up')
    for (const key of ['reasons', 'reasonsInclude'] as const) {
      const list = expect[key]
      if (list !== undefined && (!Array.isArray(list) || list.some((r) => typeof r !== 'string'))) yaml.fail([...path, 'expect', key], 'must be a list of reason codes')
    }
    if (expect.stepUpLevel !== undefined && !['low', 'medium', 'high'].includes(expect.stepUpLevel as string)) yaml.fail([...path, 'expect', 'stepUpLevel'], 'must be low, medium or high')
    const given = c.given === undefined ? [] : Array.isArray(c.given) ? c.given.map((g, j) => readGiven(yaml, [...path, 'given', j], g, defaults)) : yaml.fail([...path, 'given'], 'must be a list')
    const parsed: PolicyCase = { name: c.name as string, line: yaml.lineOf(path), given, input: readInput(yaml, [...path, 'input'], c.input, defaults), expect: expect as unknown as Expectation }
    if (c.at !== undefined) parsed.at = time(yaml, [...path, 'at'], c.at)
    return parsed
  })
  return { file, description: typeof root.description === 'string' ? root.description : '', start: time(yaml, ['now'], root.now ?? DEFAULT_NOW), cases }
}

export async function loadPolicySuites(policyDir: string): Promise<PolicySuite[]> {
  const dir = join(policyDir, 'tests')
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml')).sort()
  } catch {
    return []
  }
  const suites: PolicySuite[] = []
  for (const name of names) suites.push(parsePolicySuite(await readFile(join(dir, name), 'utf8'), `tests/${basename(name)}`))
  return suites
}

function compare(got: Decision, want: Expectation): string[] {
  const problems: string[] = []
  if (got.decision !== want.decision) problems.push(`decision: want ${want.decision}, got ${got.decision}`)
  if (want.reasons && JSON.stringify(got.reasons) !== JSON.stringify(want.reasons)) problems.push(`reasons: want [${want.reasons.join(', ')}], got [${got.reasons.join(', ')}]`)
  for (const reason of want.reasonsInclude ?? []) if (!(got.reasons as string[]).includes(reason)) problems.push(`reasons: want ${reason} among [${got.reasons.join(', ')}]`)
  if (want.stepUpLevel !== undefined && got.stepUp?.level !== want.stepUpLevel) problems.push(`step-up level: want ${want.stepUpLevel}, got ${got.stepUp?.level ?? 'none'}`)
  return problems
}

/** Runs every suite against `bundle`; each suite gets its own embedded store, clock and token issuer. */
export async function runPolicySuites(bundle: PolicyBundle, suites: readonly PolicySuite[], options: { geo?: GeoLookup; defaultTenant?: string } = {}): Promise<CaseResult[]> {
  const geo = options.geo ?? createGeoipLookup()
  const results: CaseResult[] = []
  for (const suite of suites) {
    let now = suite.start
    const clock = () => now
    const store = new MemoryStateStore({ now: clock })
    const { publicKey, privateKey } = await generateKeyPair('ES256')
    const tokens = await createTokenVerifier({
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'suite', alg: 'ES256' }] },
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['ES256'],
      now: clock,
    })
    const policy = { current: bundle }
    const responder = createResponder({ store, policy, geo, now: clock })
    const pdp: Pdp = assemblePdp({
      policy,
      now: clock,
      defaultTenant: options.defaultTenant ?? 'default',
      store,
      tokens,
      geo,
      onRiskFindings: (f) => responder.onRiskFindings(f),
    })
    const sign = async (claims: JWTPayload) => {
      const iat = Math.floor(now / 1000)
      return new SignJWT({ auth_time: iat, ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'suite' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt(iat)
        .setExpirationTime(iat + 300)
        .setJti(randomUUID())
        .sign(privateKey)
    }
    const decide = async (input: CaseInput) => {
      const { token, ...rest } = input
      const decision = await pdp.decide(token === undefined ? (rest as DecisionInput) : { ...rest, token: await sign(token) }, { source: 'cli', callerTrusted: true })
      await responder.settled()
      return decision
    }
    for (const c of suite.cases) {
      if (c.at !== undefined) now = c.at
      for (const step of c.given) {
        if ('advanceSeconds' in step) now += step.advanceSeconds * 1000
        else if ('decide' in step) await decide(step.decide)
        else for (let i = 0; i < step.times; i++) await responder.record({ ...step.event, time: now })
      }
      const got = await decide(c.input)
      const problems = compare(got, c.expect)
      results.push({ name: c.name, file: suite.file, line: c.line, ok: problems.length === 0, problems, got })
    }
    await store.close()
  }
  return results
}

