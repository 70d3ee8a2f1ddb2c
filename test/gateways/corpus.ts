import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Type, type Static } from 'typebox'
import { buildApp } from '../../src/app.js'
import { GatewayRequestSchema } from '../../src/cli/case-file.js'
import { loadConfig } from '../../src/config/config.js'
import { readYaml } from '../../src/engine/policy/yaml-reader.js'
import { createGeoipLookup } from '../../src/engine/risk/geo.js'
import { EXAMPLE_POLICIES, auditCapture, manualClock } from '../helpers/build.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'
import { deadPort, echoUpstream, frozenServer, headerValues, type HeaderList, type RawResponse, type UpstreamRequest } from './net.js'

type Tap = import('tap').Test

export type PdpState = 'up' | 'stopped' | 'frozen'
type Status = Static<typeof StatusSchema>

const StatusSchema = Type.Union([Type.Integer({ minimum: 100, maximum: 599 }), Type.Literal('4xx'), Type.Literal('5xx')])
const expectFields = {
  status: StatusSchema,
  upstream: Type.Union([
    Type.Literal(false),
    Type.Object(
      { method: Type.String(), path: Type.String(), subject: Type.Optional(Type.String()), tenant: Type.Optional(Type.Union([Type.String(), Type.Null()])) },
      { additionalProperties: false },
    ),
  ]),
  challenge: Type.Optional(Type.Object({ error: Type.Optional(Type.String()), exact: Type.Optional(Type.String()) }, { additionalProperties: false })),
  reason: Type.Optional(Type.String()),
  decision: Type.Optional(Type.Object({ action: Type.String(), type: Type.String(), id: Type.Optional(Type.String()) }, { additionalProperties: false })),
}

/**
 * The corpus file (its fields are described at its top). A client request is a gateway request of the decision
 * cases' format (method, path) with what a client adds: a token by name, headers, a body.
 */
const CorpusSchema = Type.Object(
  {
    trust_headers: Type.Array(Type.String()),
    tokens: Type.Record(
      Type.String(),
      Type.Object(
        { sub: Type.String(), tenant: Type.Optional(Type.String()), roles: Type.Optional(Type.Array(Type.String())), amr: Type.Array(Type.String()) },
        { additionalProperties: false },
      ),
    ),
    cases: Type.Array(
      Type.Object(
        {
          name: Type.String(),
          pdp: Type.Optional(Type.Enum(['up', 'stopped', 'frozen'])),
          request: Type.Object(
            {
              ...GatewayRequestSchema.properties,
              token: Type.Optional(Type.String()),
              headers: Type.Optional(Type.Record(Type.String(), Type.String())),
              body: Type.Optional(Type.String()),
            },
            { additionalProperties: false },
          ),
          expect: Type.Object(expectFields, { additionalProperties: false }),
          gateways: Type.Optional(
            Type.Record(
              Type.String(),
              Type.Object(
                {
                  status: Type.Optional(expectFields.status),
                  upstream: Type.Optional(expectFields.upstream),
                  challenge: expectFields.challenge,
                  reason: expectFields.reason,
                  decision: expectFields.decision,
                  skip: Type.Optional(Type.String()),
                },
                { additionalProperties: false },
              ),
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)

export type Corpus = Static<typeof CorpusSchema>
export type Case = Corpus['cases'][number]
export type Expect = Case['expect']

const CORPUS_FILE = join(import.meta.dirname, 'corpus.yaml')
export const CORPUS: Corpus = readYaml(CorpusSchema, readFileSync(CORPUS_FILE, 'utf8'), CORPUS_FILE)

const expand = (text: string) => text.replace(/\{repeat:(.):(\d+)\}/g, (_m, c: string, n: string) => c.repeat(Number(n)))

/** What a client sends: the method, the raw path and the header lines, tokens resolved. */
export interface ClientRequest {
  method: string
  target: string
  headers: HeaderList
  body?: string
}

/** A gateway under test: takes the client's request, answers it (having asked the PDP, reached the upstream or not). */
export type Send = (request: ClientRequest) => Promise<RawResponse>

/** The PDP's answer to one check request, as the PDP sent it. */
interface PdpAnswer {
  method: string
  url: string
  status: number
  reason: string | undefined
}

export interface Fixture {
  pdpPort: number
  upstreamPort: number
  upstream: UpstreamRequest[]
  decisions: Record<string, unknown>[]
  answers: PdpAnswer[]
  /** The PDP's port in each state: the real one, a port nothing listens on, a server that never answers. */
  pdpPortFor(state: PdpState): Promise<number>
  clientRequest(c: Case): ClientRequest
}

interface TestLike {
  teardown(fn: () => unknown): void
}

/** The PDP (bundled policies, the test issuer's JWKS, a clock that stands still) and the echo upstream. */
export async function fixture(t: TestLike): Promise<Fixture> {
  const issuer = await createIssuer()
  const other = await createIssuer()
  const clock = manualClock()
  const capture = auditCapture()
  const config = loadConfig({
    PDP_POLICY_DIR: EXAMPLE_POLICIES,
    PDP_DECISION_LOG: 'off',
    PDP_ISSUER: ISSUER,
    PDP_AUDIENCE: AUDIENCE,
    PDP_JWKS_FILE: await issuer.jwksFile(),
  })
  // As the server does before it listens: the geo database is loaded now, not in the first decision about a
  // public address (which would outlast the gateways' 1 s time-outs).
  const geo = createGeoipLookup()
  geo.warm()
  const app = await buildApp({ config, logger: false, now: clock.now, auditStream: capture.stream, geo })
  t.teardown(() => app.close())
  const answers: PdpAnswer[] = []
  await app.listen({ host: '127.0.0.1', port: 0 })
  // At the HTTP server, not a Fastify hook: also answers given before routing (a URL that does not parse) count.
  // Fastify hands its headers to writeHead, where getHeader cannot see them: they are read there.
  app.server.prependListener('request', (request, response) => {
    let reason: string | undefined
    const writeHead = response.writeHead.bind(response) as (...args: unknown[]) => typeof response
    response.writeHead = ((...args: unknown[]) => {
      const headers = args.find((a) => typeof a === 'object' && a !== null) as Record<string, unknown> | undefined
      const found = Object.entries(headers ?? {}).find(([n]) => n.toLowerCase() === 'x-pdp-reason')?.[1] ?? response.getHeader('x-pdp-reason')
      if (found !== undefined) reason = String(found)
      return writeHead(...args)
    }) as typeof response.writeHead
    response.on('finish', () => answers.push({ method: request.method ?? '', url: request.url ?? '', status: response.statusCode, reason }))
  })
  const pdpPort = (app.server.address() as AddressInfo).port
  const upstream = await echoUpstream(t)

  const nowS = Math.floor(clock.now() / 1000)
  const tokens: Record<string, string> = {}
  for (const [name, claims] of Object.entries(CORPUS.tokens)) {
    tokens[name] = await issuer.sign({ ...claims, auth_time: nowS - 60 }, { nowMs: clock.now() })
  }
  tokens.invalid = await other.sign({ sub: 'alice', tenant: 'acme', auth_time: nowS - 60, amr: ['pwd', 'otp'] }, { nowMs: clock.now() })

  const ports = new Map<PdpState, number>([['up', pdpPort]])
  return {
    pdpPort,
    upstreamPort: upstream.port,
    upstream: upstream.requests,
    decisions: capture.lines,
    answers,
    async pdpPortFor(state) {
      if (!ports.has(state)) ports.set(state, state === 'frozen' ? await frozenServer(t) : await deadPort())
      return ports.get(state)!
    },
    clientRequest(c) {
      const headers: HeaderList = []
      const token = c.request.token
      if (token !== undefined) {
        if (tokens[token] === undefined) throw new Error(`${c.name}: no token named ${token}`)
        headers.push(['Authorization', `Bearer ${tokens[token]}`])
      }
      for (const [name, value] of Object.entries(c.request.headers ?? {})) headers.push([name, expand(String(value))])
      const request: ClientRequest = { method: c.request.method, target: expand(c.request.path), headers }
      if (c.request.body !== undefined) request.body = c.request.body
      return request
    },
  }
}

/** The case's expectations for this gateway: its overrides merged over the common ones. */
export function expectationFor(c: Case, gateway: string): (Expect & { skip?: string }) {
  return { ...c.expect, ...(c.gateways?.[gateway] ?? {}) }
}

const normal = (name: string) => name.toLowerCase().replace(/_/g, '-')

function statusMatches(status: number, expected: Status): boolean {
  if (expected === '4xx') return status >= 400 && status < 500
  if (expected === '5xx') return status >= 500 && status < 600
  return status === expected
}

/** A generous time-out of the client's own: an answer must come well before it. */
export const CLIENT_TIMEOUT_MS = 10_000
/** The requirement for a PDP that is down or hangs: the client has its error within this. */
export const UNAVAILABLE_WITHIN_MS = 2000

/**
 * Replays the corpus through one gateway. `send(state)` gives the gateway to use with the PDP in that state
 * (a live gateway is started once per state that has cases). Each case is one subtest.
 */
export async function replay(t: Tap, gateway: string, f: Fixture, sendFor: (state: PdpState) => Promise<Send>): Promise<void> {
  const states: PdpState[] = ['up', 'stopped', 'frozen']
  for (const state of states) {
    const cases = CORPUS.cases.filter((c) => (c.pdp ?? 'up') === state)
    if (cases.length === 0) continue
    const send = await sendFor(state)
    for (const c of cases) {
      const expect = expectationFor(c, gateway)
      await t.test(`${gateway}: ${c.name}`, expect.skip === undefined ? {} : { skip: expect.skip }, async (t) => {
        const request = f.clientRequest(c)
        const seenBefore = f.upstream.length
        const decisionsBefore = f.decisions.length
        const answersBefore = f.answers.length
        const res = await send(request)
        // The upstream's and the PDP's records of this case settle once the client has its answer.
        await new Promise((r) => setTimeout(r, 20))
        const seen = f.upstream.slice(seenBefore)
        const decisions = f.decisions.slice(decisionsBefore).filter((l) => l.type === 'decision')
        const answers = f.answers.slice(answersBefore)
        const detail = { status: res.status, error: res.error, upstream: seen.map((s) => `${s.method} ${s.target}`), answers }

        t.notOk(res.timedOut, 'the client got an answer before its own time-out', detail)
        t.ok(statusMatches(res.status, expect.status), `client status ${res.status}, expected ${expect.status}`, detail)
        if (state !== 'up') t.ok(res.ms < UNAVAILABLE_WITHIN_MS, `answered in ${Math.round(res.ms)} ms (under ${UNAVAILABLE_WITHIN_MS} ms)`)

        const challenges = headerValues(res.headers, 'www-authenticate')
        if (res.status === 401) {
          t.equal(challenges.length, 1, 'exactly one WWW-Authenticate', { challenges })
          const [challenge = ''] = challenges
          if (expect.challenge?.exact !== undefined) t.equal(challenge, expect.challenge.exact, 'the challenge')
          if (expect.challenge?.error !== undefined) t.match(challenge, new RegExp(`^Bearer .*error="${expect.challenge.error}"`), 'the challenge names its error')
        } else {
          t.equal(challenges.length, 0, 'no WWW-Authenticate outside a 401', { challenges })
        }

        if (expect.reason === 'none') {
          t.same(answers, [], 'no check request reached the PDP')
        } else if (expect.reason !== undefined) {
          t.equal(answers.length, 1, 'one check request reached the PDP', detail)
          t.equal(answers[0]?.reason, expect.reason, 'the PDP answered with this reason')
          t.ok([200, 401, 403].includes(answers[0]?.status ?? 0), `the PDP answered 200, 401 or 403 (${answers[0]?.status})`)
        }
        if (expect.decision !== undefined) {
          t.equal(decisions.length, 1, 'one decision', { decisions: decisions.map((d) => [d.action, d.resource]) })
          const resource: Record<string, string> = { type: expect.decision.type }
          if (expect.decision.id !== undefined) resource.id = expect.decision.id
          t.match(decisions[0], { action: expect.decision.action, resource }, 'the PDP decided about the request the client made')
        }

        if (expect.upstream === false) {
          t.same(seen.map((s) => `${s.method} ${s.target}`), [], 'the API saw nothing')
          return
        }
        t.equal(seen.length, 1, 'the API saw the request once', detail)
        const got = seen[0]
        if (!got) return
        t.equal(got.method, expect.upstream.method, 'the API saw the method the PDP decided on')
        t.equal(got.target, expect.upstream.path, 'the API saw the path the PDP decided on')

        // Trust headers: the PDP's values exactly once; never a client's.
        const upstreamHeaders = (name: string) => got.headers.filter(([n]) => normal(n) === name)
        for (const name of ['x-pdp-subject', 'x-pdp-tenant', 'x-pdp-decision-id']) {
          t.ok(upstreamHeaders(name).length <= 1, `the API sees ${name} at most once`, { got: upstreamHeaders(name) })
        }
        const value = (name: string) => upstreamHeaders(name)[0]?.[1]
        if (expect.upstream.subject !== undefined) t.equal(value('x-pdp-subject'), expect.upstream.subject, 'X-Pdp-Subject is the PDP\'s')
        if (expect.upstream.tenant === null) t.same(upstreamHeaders('x-pdp-tenant'), [], 'no X-Pdp-Tenant: the PDP named none')
        else if (expect.upstream.tenant !== undefined) t.equal(value('x-pdp-tenant'), expect.upstream.tenant, 'X-Pdp-Tenant is the PDP\'s')
        if (decisions.length === 1) t.equal(value('x-pdp-decision-id'), decisions[0]!.decision_id, 'X-Pdp-Decision-Id is the PDP\'s')
        for (const [name, forged] of request.headers) {
          if (!CORPUS.trust_headers.includes(normal(name))) continue
          // A gateway may append to X-Forwarded-For; only its rightmost entry is the gateway's word.
          const leaked = got.headers.filter(([n, v]) => normal(n) === normal(name) && (normal(name) === 'x-forwarded-for' ? v.split(/,\s*/).at(-1) === forged : v === forged))
          t.same(leaked, [], `the client's ${name} does not reach the API`)
        }
      })
    }
  }
}
