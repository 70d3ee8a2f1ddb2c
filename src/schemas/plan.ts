import { Type, type Static } from 'typebox'
import type { Plan } from '../engine/plan/settle.js'
import { REASON_CODES } from '../engine/types.js'
import { Name } from './common.js'
import { ContextSchema, DecideResponseSchema, SubjectSchema } from './decide.js'

const literals = <const T extends string[]>(values: readonly [...T]) => Type.Enum(values)

export const PlanRequestSchema = Type.Object(
  {
    subject: Type.Optional(SubjectSchema),
    token: Type.Optional(
      Type.String({ minLength: 1, maxLength: 65536, description: 'A JWT from the configured issuer, instead of subject; the PDP verifies it' }),
    ),
    action: Name('Action, e.g. read'),
    resource: Type.Object({ type: Name('Resource type, e.g. documents') }, { additionalProperties: false, description: 'The resource type planned for; every resource of it at once' }),
    context: Type.Optional(ContextSchema),
  },
  { additionalProperties: false },
)

const FILTER_DESCRIPTION =
  'For conditional: a JSON expression tree over resource.id and resource.attributes.<name>. Nodes: ' +
  '{"op":"and"|"or","args":[...]}, {"op":"not","arg":...}, {"op":"eq"|"ne"|"lt"|"le"|"gt"|"ge","field":F,"value":string|number|boolean}, ' +
  '{"op":"in","field":F,"values":[...]}, {"op":"exists","field":F}, {"op":"keyMatch","field":F,"pattern":string}, ' +
  '{"op":"matches","field":F,"function":"keyMatch2"|"keyMatch3"|"keyMatch4"|"keyMatch5"|"regexMatch"|"globMatch","pattern":string,"regex":string}. ' +
  'Comparisons mean what they mean in the policy (JavaScript ==, !=, <, ...), a missing attribute fails every comparison but ne; ' +
  'in is strict membership, exists is present and not null, keyMatch is Casbin\'s (a prefix test up to the first "*"). ' +
  'matches is Casbin\'s function of that name with the policy\'s pattern, carried out as the regular expression regex searched in the value ' +
  'read as a string (a missing value is ""; for keyMatch5 the value up to its first "?"); regex is written to mean the same in JavaScript ' +
  '(new RegExp(regex), no flags) and in PostgreSQL (~). ' +
  'The zt-pdp/client package turns it into a predicate, a parameterised SQL WHERE clause or a Prisma where object.'

const { stepUp, risk, subject, policyVersion, decisionId } = DecideResponseSchema.properties

export const PlanResponseSchema = Type.Object({
  plan: literals(['always_allowed', 'always_denied', 'conditional', 'unsupported'] as const),
  filter: Type.Optional(Type.Unknown({ description: FILTER_DESCRIPTION })),
  decisionId,
  subject,
  reasons: Type.Array(literals(REASON_CODES)),
  policyVersion,
  stepUp: Type.Optional({ ...stepUp, description: 'The allowed resources need this step-up first, as a decision on any of them would ask' }),
  risk,
  unsupported: Type.Optional(
    Type.Object(
      { rule: Type.Optional(Type.String({ description: 'file:line of the rule' })), reason: Type.String() },
      { description: 'For unsupported: the rule holding what no filter can express exactly, and why (the policy is never approximated)' },
    ),
  ),
})

// Compile-time guard: the engine's Plan must always fit the response schema.
const fitsSchema: (p: Plan) => Static<typeof PlanResponseSchema> = (p) => p
void fitsSchema
