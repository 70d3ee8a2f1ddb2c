import type { FastifyInstance } from 'fastify'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../../src/app.js'
import type { Answer, CaseInput, CaseTarget, OpenTarget } from '../../src/cli/policy-tests.js'
import { decisionInputOf } from '../../src/cli/policy-tests.js'
import { loadConfig } from '../../src/config/config.js'
import type { GeoLookup } from '../../src/engine/risk/geo.js'
import { CALLER } from '../helpers/build.js'
import { AUDIENCE, ISSUER, type Issuer } from '../helpers/tokens.js'
import { headerValues, rawRequest, type HeaderList } from '../gateways/net.js'

/**
 * The decision cases' targets over HTTP: a real server listening on a port, one per suite (its state starts
 * empty, as the engine runner's does), asked the way its clients ask it. The caller is the trusted service of
 * CALLER, whose decisions about the subjects it names learn and trigger responses, as `pdp test`'s do.
 */

/** Generous: only a hung server would take this long, even on a loaded machine. */
const CLIENT_TIMEOUT_MS = 30_000

export interface HttpTargetOptions {
  policyDir: string
  issuer: Issuer
  jwksFile: string
  geo: GeoLookup
}

/** One request written as given; the answer's JSON body. */
async function send(port: number, method: string, target: string, headers: HeaderList, body?: unknown) {
  const request: Parameters<typeof rawRequest>[1] = { method, target, headers: [...headers] }
  if (body !== undefined) {
    request.body = JSON.stringify(body)
    request.headers.push(['Content-Type', 'application/json'])
  }
  const res = await rawRequest(port, request, CLIENT_TIMEOUT_MS)
  if (res.status === 0) throw new Error(`${method} ${target}: no answer (${res.error ?? 'timed out'})`)
  let json: Record<string, unknown> = {}
  try {
    json = res.body === '' ? {} : (JSON.parse(res.body) as Record<string, unknown>)
  } catch {
    throw new Error(`${method} ${target}: ${res.status} with a body that is not JSON`)
  }
  return { status: res.status, headers: res.headers, json }
}

/** The forward-auth endpoints, one per gateway dialect: how each carries the original method and path. */
export const GATEWAY_DIALECTS = {
  nginx: (method: string, path: string) => ({ method: 'GET', target: '/authz', headers: [['X-Original-Method', method], ['X-Original-URI', path]] as HeaderList }),
  forward: (method: string, path: string) => ({ method: 'GET', target: '/authz/forward', headers: [['X-Forwarded-Method', method], ['X-Forwarded-Uri', path]] as HeaderList }),
  envoy: (method: string, path: string) => ({ method, target: `/authz/envoy${path}`, headers: [] as HeaderList }),
} as const
export type GatewayDialect = keyof typeof GATEWAY_DIALECTS

/** The status a gateway must see for an answer: 200 lets the request through, 401 asks to authenticate, 403 refuses. */
function statusFor(answer: Answer): number {
  if (answer.decision === 'allow') return 200
  if (answer.decision === 'step_up') return 401
  return answer.reasons.some((r) => r.startsWith('token_')) ? 401 : 403
}

/**
 * A server for each suite. Decision requests go to POST /decide; with `gateway`, a case input that is a gateway
 * request goes instead through the forward-auth endpoints, the dialects taking turns (one endpoint per input, so
 * the suite's state sees each request once).
 */
export function httpTarget(options: HttpTargetOptions, gateway = false): OpenTarget {
  return async (_suite, clock) => {
    const config = loadConfig({
      PDP_POLICY_DIR: options.policyDir,
      PDP_DECISION_LOG: 'off',
      PDP_ISSUER: ISSUER,
      PDP_AUDIENCE: AUDIENCE,
      PDP_JWKS_FILE: options.jwksFile,
      ...CALLER.env,
    })
    const app: FastifyInstance = await buildApp({ config, logger: false, now: clock, geo: options.geo })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as AddressInfo).port
    const caller = Object.entries(CALLER.headers) as HeaderList
    const dialects = Object.keys(GATEWAY_DIALECTS) as GatewayDialect[]
    let turn = 0
    const sign = (claims: NonNullable<CaseInput['token']>) => options.issuer.sign({ auth_time: Math.floor(clock() / 1000), ...claims }, { nowMs: clock() })

    const viaDecide = async (input: CaseInput) => {
      const token = input.token === undefined ? undefined : await sign(input.token)
      const bundle = app.policy.current
      const res = await send(port, 'POST', '/decide', caller, decisionInputOf(bundle, input, token))
      const problems: string[] = []
      if (res.status !== 200) throw new Error(`POST /decide answered ${res.status}: ${String(res.json.message)}`)
      if (res.json.policyVersion !== bundle.version) problems.push(`POST /decide: policy version ${String(res.json.policyVersion)}, the server's is ${bundle.version}`)
      return { answer: res.json as unknown as Answer, problems, via: 'POST /decide' }
    }

    const viaGateway = async (input: CaseInput & { request: NonNullable<CaseInput['request']> }) => {
      let dialect = dialects[turn++ % dialects.length]!
      // A HEAD's answer has no body to read the reasons from; Envoy's endpoint keeps the original method.
      if (dialect === 'envoy' && input.request.method === 'HEAD') dialect = dialects[turn++ % dialects.length]!
      const { method, target, headers } = GATEWAY_DIALECTS[dialect](input.request.method, input.request.path)
      headers.push(['Authorization', `Bearer ${await sign(input.token!)}`])
      if (input.context?.ip !== undefined) headers.push(['X-Forwarded-For', input.context.ip])
      const res = await send(port, method, target, headers)
      const answer = res.json as unknown as Answer
      const where = `${dialect} (${method} ${target})`
      const problems: string[] = []
      if (res.status !== statusFor(answer)) problems.push(`${where}: status ${res.status} for ${answer.decision} (${answer.reasons?.join(', ')})`)
      const header = headerValues(res.headers, 'x-pdp-decision')
      if (header.length !== 1 || header[0] !== answer.decision) problems.push(`${where}: X-Pdp-Decision [${header.join(', ')}] for ${answer.decision}`)
      if (answer.decision === 'step_up' && headerValues(res.headers, 'www-authenticate').length !== 1) problems.push(`${where}: a step-up without exactly one WWW-Authenticate`)
      return { answer, problems: problems.map((p) => `through ${p}`), via: where }
    }

    const target: CaseTarget = {
      async decide(input) {
        const result = gateway && input.request !== undefined ? await viaGateway({ ...input, request: input.request }) : await viaDecide(input)
        await app.responder.settled()
        return result
      },
      async record(event) {
        const res = await send(port, 'POST', '/events', caller, event)
        if (res.status !== 200) throw new Error(`POST /events answered ${res.status}: ${String(res.json.message)}`)
        await app.responder.settled()
      },
      close: () => app.close(),
    }
    return target
  }
}
