import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Type, type Static } from 'typebox'
import { LineCounter, parseDocument } from 'yaml'
import { PolicyFileError } from '../engine/policy/policy-files.js'
import { readYaml } from '../engine/policy/yaml-reader.js'
import { REASON_CODES, STEP_UP_LEVELS } from '../engine/types.js'
import { SECURITY_EVENT_TYPES } from '../response/events.js'
import { Id, Name } from '../schemas/common.js'
import { ContextSchema, ResourceSchema, SubjectSchema } from '../schemas/decide.js'

/**
 * Decision cases: the one format of `<policy dir>/tests/*.yaml` (run by `pdp test`) and of the repository's own
 * case corpus. A file is a suite of cases run in order on one fresh state, so earlier cases and `given` steps can
 * build up history (failed logins, a first location) for the later ones.
 */

const isoTime = (description: string) =>
  Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$', description: `${description} (ISO 8601, e.g. 2026-03-01T12:00:00Z)` })

/**
 * A request as a gateway forwards it: the method and the raw path (with any query). The gateway corpus
 * (test/gateways/corpus.yaml) describes its client requests with the same fields.
 */
export const GatewayRequestSchema = Type.Object(
  {
    method: Type.String({ pattern: '^[A-Z]{1,16}$', description: 'HTTP method' }),
    path: Type.String({ pattern: '^/', maxLength: 65_536, description: 'The path as sent, with any query' }),
  },
  { additionalProperties: false },
)

/** The claims of a token the runner signs for the case (issuer, audience, times and jti are the runner's). */
const TokenClaimsSchema = Type.Object({ sub: Id('The token subject') }, { additionalProperties: true, description: 'Token claims: sub, tenant, roles, amr, ...' })

export const CaseInputSchema = Type.Object(
  {
    subject: Type.Optional(SubjectSchema),
    token: Type.Optional(TokenClaimsSchema),
    action: Type.Optional(Name('Action, e.g. read')),
    resource: Type.Optional(ResourceSchema),
    request: Type.Optional(GatewayRequestSchema),
    context: Type.Optional(ContextSchema),
    explain: Type.Optional(Type.Boolean()),
  },
  {
    additionalProperties: false,
    description:
      'A POST /decide body (subject or token claims; action and resource), or a gateway request (token claims, request: method and path, ' +
      'context: ip only) that routes.yaml maps to its action and resource',
  },
)

const GivenSchema = Type.Union([
  Type.Object(
    {
      event: Type.Object(
        {
          type: Type.Enum(SECURITY_EVENT_TYPES),
          subject: Id(),
          tenant: Type.Optional(Name()),
          ip: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          deviceId: Type.Optional(Id()),
          sessionId: Type.Optional(Id()),
          userAgent: Type.Optional(Type.String({ maxLength: 1024 })),
        },
        { additionalProperties: false, description: 'A security event, as POST /events records it, at the suite clock' },
      ),
      times: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'How many times it happens (default 1)' })),
    },
    { additionalProperties: false },
  ),
  Type.Object({ decide: CaseInputSchema }, { additionalProperties: false, description: 'An earlier decision, its answer unchecked' }),
  Type.Object({ advanceSeconds: Type.Number({ minimum: 0 }) }, { additionalProperties: false, description: 'Time passing' }),
])

export const ExpectationSchema = Type.Object(
  {
    decision: Type.Enum(['allow', 'deny', 'step_up']),
    reasons: Type.Optional(Type.Array(Type.Enum(REASON_CODES), { description: 'Exactly these reasons, in order' })),
    reasonsInclude: Type.Optional(Type.Array(Type.Enum(REASON_CODES), { description: 'These reasons among the decision\'s, in any order' })),
    stepUpLevel: Type.Optional(Type.Enum(STEP_UP_LEVELS)),
    explanation: Type.Optional(
      Type.Object(
        {
          effectiveRoles: Type.Array(Type.String()),
          domain: Type.String(),
          matchedRules: Type.Array(Type.Object({ ptype: Type.String(), rule: Type.Array(Type.String()), source: Type.Optional(Type.String()) }, { additionalProperties: false })),
        },
        { additionalProperties: false, description: 'Exactly this explanation (the input asks for explain: true)' },
      ),
    ),
  },
  { additionalProperties: false },
)

const CaseSchema = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    at: Type.Optional(isoTime('Set the suite clock to this time before the case')),
    given: Type.Optional(Type.Array(GivenSchema, { description: 'Steps before the case: events, earlier decisions, time passing' })),
    input: CaseInputSchema,
    expect: ExpectationSchema,
  },
  { additionalProperties: false },
)

/** The schema of a case file (a JSON Schema: editors can complete and check case files with it). */
export const CASE_FILE_SCHEMA = Type.Object(
  {
    description: Type.Optional(Type.String()),
    now: Type.Optional(isoTime('The suite clock at the start (default 2026-03-01T12:00:00Z)')),
    defaults: Type.Optional(
      Type.Object({ context: Type.Optional(ContextSchema) }, { additionalProperties: false, description: 'The context of every decision request that has none' }),
    ),
    cases: Type.Array(CaseSchema, { minItems: 1 }),
  },
  { additionalProperties: false, title: 'pdp decision cases' },
)

export type CaseInput = Static<typeof CaseInputSchema>
export type Given = Static<typeof GivenSchema>
export type Expectation = Static<typeof ExpectationSchema>
export type GatewayRequest = Static<typeof GatewayRequestSchema>

export interface PolicyCase {
  name: string
  /** The case's line in its file. */
  line: number | undefined
  /** Absolute time of this case (epoch ms); otherwise the suite's clock as it stands. */
  at?: number
  given: Given[]
  input: CaseInput
  expect: Expectation
}

export interface PolicySuite {
  /** The file as reported, e.g. tests/risk.yaml. */
  file: string
  description: string
  /** The suite clock at the start, epoch ms. */
  start: number
  cases: PolicyCase[]
}

const DEFAULT_NOW = '2026-03-01T12:00:00Z'

/** The rules the schema cannot say: one subject source, one request shape, and what a gateway can carry. */
function inputProblem(input: CaseInput): string | undefined {
  if ((input.subject === undefined) === (input.token === undefined)) return 'needs exactly one of subject or token (claims)'
  if (input.request === undefined) {
    if (input.action === undefined || input.resource === undefined) return 'needs action and resource (or a gateway request)'
    return undefined
  }
  if (input.action !== undefined || input.resource !== undefined) return 'a gateway request takes its action and resource from routes.yaml: give request or action and resource, not both'
  if (input.token === undefined) return 'a gateway request carries a token (claims), not a subject'
  if (input.explain !== undefined) return 'a gateway request cannot ask for an explanation'
  const extra = Object.keys(input.context ?? {}).filter((k) => k !== 'ip')
  if (extra.length > 0) return `a gateway request's context is its ip only (the token carries the session), not ${extra.join(', ')}`
  return undefined
}

/** Parses one case file; every fault is a PolicyFileError naming the file and line. */
export function parseCaseFile(text: string, file: string): PolicySuite {
  const root = readYaml(CASE_FILE_SCHEMA, text, file)
  // The file is valid by now; its document is read again only to point each case at its line.
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines })
  const lineOf = (path: (string | number)[]) => {
    const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined
    return node?.range ? lines.linePos(node.range[0]).line : undefined
  }
  const time = (value: string, path: (string | number)[]) => {
    const ms = Date.parse(value)
    if (Number.isNaN(ms)) throw new PolicyFileError(file, lineOf(path), `${path.join('.')}: "${value}" is no time`)
    return ms
  }
  const context = root.defaults?.context
  const withDefaults = (input: CaseInput, path: (string | number)[]): CaseInput => {
    const problem = inputProblem(input)
    if (problem !== undefined) throw new PolicyFileError(file, lineOf(path), `${path.join('.')}: ${problem}`)
    return input.context !== undefined || context === undefined || input.request !== undefined ? input : { ...input, context }
  }
  const cases = root.cases.map((c, i): PolicyCase => {
    const given = (c.given ?? []).map((g, j) => ('decide' in g ? { decide: withDefaults(g.decide, ['cases', i, 'given', j, 'decide']) } : g))
    const parsed: PolicyCase = { name: c.name, line: lineOf(['cases', i]), given, input: withDefaults(c.input, ['cases', i, 'input']), expect: c.expect }
    if (c.at !== undefined) parsed.at = time(c.at, ['cases', i, 'at'])
    return parsed
  })
  return { file, description: root.description ?? '', start: time(root.now ?? DEFAULT_NOW, ['now']), cases }
}

/**
 * Every case file (*.yaml, *.yml) in `dir`, in name order, each reported as `<label>/<name>`; none when the
 * directory does not exist.
 */
export async function loadCaseFiles(dir: string, label: string): Promise<PolicySuite[]> {
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.yaml') || n.endsWith('.yml')).sort()
  } catch {
    return []
  }
  const suites: PolicySuite[] = []
  for (const name of names) suites.push(parseCaseFile(await readFile(join(dir, name), 'utf8'), `${label}/${name}`))
  return suites
}
