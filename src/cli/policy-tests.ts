import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { assemblePdp } from '../compose.js'
import type { DecisionInput, Pdp } from '../engine/pdp.js'
import type { PolicyBundle } from '../engine/policy/bundle.js'
import { createGeoipLookup, type GeoLookup } from '../engine/risk/geo.js'
import type { Clock, Decision } from '../engine/types.js'
import { createTokenVerifier } from '../identity/token-verifier.js'
import type { SecurityEvent } from '../response/events.js'
import { createResponder } from '../response/responder.js'
import { MemoryStateStore } from '../store/memory-store.js'
import { loadCaseFiles, type CaseInput, type Expectation, type PolicySuite } from './case-file.js'

/**
 * Runs decision cases (see case-file.ts) against a target: the engine here (`pdp test`), a server over
 * POST /decide or its forward-auth endpoints in the repository's tests. Every suite gets a fresh target on
 * the suite's own clock, and the cases and their `given` steps drive it in order.
 */

export type { CaseInput, Expectation, PolicyCase, PolicySuite } from './case-file.js'

/** What a case is judged on: the decision, or what a forward-auth endpoint answered of it. */
export type Answer = Pick<Decision, 'decision' | 'reasons'> & Partial<Pick<Decision, 'stepUp' | 'explanation'>>

/** One suite's view of where its cases are decided; its state starts empty. */
export interface CaseTarget {
  /**
   * Decides one input; `problems` are faults of the way there (a status that does not fit the answer), `via` names
   * the way when a target has several.
   */
  decide(input: CaseInput): Promise<{ answer: Answer; problems: string[]; via?: string }>
  /** Records a security event at the suite clock, its responses settled. */
  record(event: Omit<SecurityEvent, 'time'>): Promise<void>
  close(): Promise<void>
}

/** Opens a target for a suite; `now` is the suite clock, which the runner moves. */
export type OpenTarget = (suite: PolicySuite, now: Clock) => Promise<CaseTarget>

export interface CaseResult {
  name: string
  file: string
  line: number | undefined
  ok: boolean
  /** What differed, for a failure. */
  problems: string[]
  got: Answer | undefined
  /** The way the case's own input went, when the target has several. */
  via?: string
}

/** The suites of a policy directory: `<dir>/tests/*.yaml`, reported as `tests/<name>`. */
export function loadPolicySuites(policyDir: string): Promise<PolicySuite[]> {
  return loadCaseFiles(join(policyDir, 'tests'), 'tests')
}

/**
 * The decision request a case input stands for: a gateway request is mapped by the policy's routes.yaml as the
 * forward-auth endpoints map it (action, resource, the route's sensitivity); `token` is the signed token.
 */
export function decisionInputOf(bundle: PolicyBundle, input: CaseInput, token: string | undefined): DecisionInput {
  const { token: _claims, request, ...rest } = input
  const decision = (token === undefined ? rest : { ...rest, token }) as DecisionInput
  if (request === undefined) return decision
  const route = bundle.routes.match(request.method, request.path)
  if (!route) throw new Error(`no route of routes.yaml maps ${request.method} ${request.path}`)
  const context: NonNullable<DecisionInput['context']> = { ...decision.context }
  if (route.sensitivity) context.sensitivity = route.sensitivity
  return {
    ...decision,
    action: route.action,
    resource: route.resourceId === undefined ? { type: route.resourceType } : { type: route.resourceType, id: route.resourceId },
    context,
  }
}

function compare(got: Answer, want: Expectation): string[] {
  const problems: string[] = []
  if (got.decision !== want.decision) problems.push(`decision: want ${want.decision}, got ${got.decision}`)
  if (want.reasons && !isDeepStrictEqual(got.reasons, want.reasons)) problems.push(`reasons: want [${want.reasons.join(', ')}], got [${got.reasons.join(', ')}]`)
  for (const reason of want.reasonsInclude ?? []) if (!(got.reasons as string[]).includes(reason)) problems.push(`reasons: want ${reason} among [${got.reasons.join(', ')}]`)
  if (want.stepUpLevel !== undefined && got.stepUp?.level !== want.stepUpLevel) problems.push(`step-up level: want ${want.stepUpLevel}, got ${got.stepUp?.level ?? 'none'}`)
  if (want.explanation !== undefined && !isDeepStrictEqual(got.explanation, want.explanation)) {
    problems.push(`explanation: want ${JSON.stringify(want.explanation)}, got ${JSON.stringify(got.explanation ?? null)}`)
  }
  return problems
}

/** Runs every suite on a target of its own; a case whose steps fail is reported failed, and the suite goes on. */
export async function runSuites(suites: readonly PolicySuite[], open: OpenTarget): Promise<CaseResult[]> {
  const results: CaseResult[] = []
  for (const suite of suites) {
    let now = suite.start
    const target = await open(suite, () => now)
    try {
      for (const c of suite.cases) {
        const result: CaseResult = { name: c.name, file: suite.file, line: c.line, ok: false, problems: [], got: undefined }
        try {
          if (c.at !== undefined) now = c.at
          for (const step of c.given) {
            if ('advanceSeconds' in step) now += step.advanceSeconds * 1000
            else if ('decide' in step) await target.decide(step.decide)
            else for (let i = 0; i < (step.times ?? 1); i++) await target.record(step.event)
          }
          const { answer, problems, via } = await target.decide(c.input)
          result.got = answer
          if (via !== undefined) result.via = via
          result.problems = [...problems, ...compare(answer, c.expect)]
        } catch (err) {
          result.problems = [`could not run: ${(err as Error).message}`]
        }
        result.ok = result.problems.length === 0
        results.push(result)
      }
    } finally {
      await target.close()
    }
  }
  return results
}

const ISSUER = 'https://policy-tests.pdp.invalid'
const AUDIENCE = 'pdp-policy-tests'

/** The engine as `pdp test` runs it: an embedded store, the response playbooks and a token issuer of its own per suite. */
export function engineTarget(bundle: PolicyBundle, options: { geo?: GeoLookup; defaultTenant?: string } = {}): OpenTarget {
  const geo = options.geo ?? createGeoipLookup()
  return async (_suite, clock) => {
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
      const iat = Math.floor(clock() / 1000)
      return new SignJWT({ auth_time: iat, ...claims })
        .setProtectedHeader({ alg: 'ES256', kid: 'suite' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt(iat)
        .setExpirationTime(iat + 300)
        .setJti(randomUUID())
        .sign(privateKey)
    }
    return {
      async decide(input) {
        const token = input.token === undefined ? undefined : await sign(input.token)
        const decision = await pdp.decide(decisionInputOf(bundle, input, token), { source: 'cli', callerTrusted: true })
        await responder.settled()
        return { answer: decision, problems: [] }
      },
      async record(event) {
        await responder.record({ ...event, time: clock() })
      },
      close: () => store.close(),
    }
  }
}

/** Runs every suite against `bundle` in the engine (`pdp test`). */
export function runPolicySuites(bundle: PolicyBundle, suites: readonly PolicySuite[], options: { geo?: GeoLookup; defaultTenant?: string } = {}): Promise<CaseResult[]> {
  return runSuites(suites, engineTarget(bundle, options))
}
