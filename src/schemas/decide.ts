import { Type, type Static } from 'typebox'
import { REASON_CODES, SENSITIVITIES, STEP_UP_LEVELS, type Decision } from '../engine/types.js'
import { Id, Name } from './common.js'

const literals = <const T extends string[]>(values: readonly [...T]) => Type.Enum(values)

/** Free-form attributes; depth, size and forbidden keys are bounded by the body guard. */
const Attributes = Type.Record(Type.String({ maxLength: 128 }), Type.Unknown(), {
  maxProperties: 64,
  description: 'Attributes policy conditions may read (r.sub.attributes.*, r.obj.attributes.*)',
})

export const SubjectSchema = Type.Object(
  {
    id: Id('Subject identifier'),
    roles: Type.Optional(Type.Array(Name('Role name'), { maxItems: 64, description: 'Roles asserted by the caller, merged with the policy assignments' })),
    tenant: Type.Optional(Name('Tenant (Casbin domain)')),
    attributes: Type.Optional(Attributes),
  },
  { additionalProperties: false },
)

export const ResourceSchema = Type.Object(
  {
    type: Name('Resource type, e.g. documents'),
    id: Type.Optional(Id('Resource identifier')),
    attributes: Type.Optional(Attributes),
  },
  { additionalProperties: false },
)

export const DeviceSchema = Type.Object(
  {
    id: Id('Device identifier'),
    managed: Type.Optional(Type.Boolean()),
    encrypted: Type.Optional(Type.Boolean()),
    osUpToDate: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true, maxProperties: 32, description: 'Device and its posture; further posture attributes are accepted' },
)

export const SessionSchema = Type.Object(
  {
    id: Type.Optional(Id('Session identifier')),
    authTime: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e11, description: 'Last active authentication, epoch seconds' })),
    amr: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 32 }), { maxItems: 16, description: 'RFC 8176 authentication methods' })),
    acr: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: false },
)

export const ContextSchema = Type.Object(
  {
    ip: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Client IP address (v4 or v6)' })),
    userAgent: Type.Optional(Type.String({ maxLength: 1024 })),
    device: Type.Optional(DeviceSchema),
    session: Type.Optional(SessionSchema),
    sensitivity: Type.Optional(literals(SENSITIVITIES)),
  },
  { additionalProperties: false },
)

export const DecideRequestSchema = Type.Object(
  {
    subject: Type.Optional(SubjectSchema),
    token: Type.Optional(
      Type.String({ minLength: 1, maxLength: 65536, description: 'A JWT from the configured issuer, instead of subject; the PDP verifies it' }),
    ),
    action: Name('Action, e.g. read'),
    resource: ResourceSchema,
    context: Type.Optional(ContextSchema),
    explain: Type.Optional(Type.Boolean({ description: 'Include matched rules and effective roles' })),
  },
  { additionalProperties: false },
)

const StepUpSchema = Type.Object({
  level: literals(STEP_UP_LEVELS),
  methods: Type.Array(Type.String()),
  maxAge: Type.Integer({ description: 'Seconds since the last active authentication that satisfy this step-up' }),
  acrValues: Type.Array(Type.String()),
})

const RiskSchema = Type.Object({
  score: Type.Number(),
  level: literals(['minimal', 'low', 'medium', 'high'] as const),
  sensitivity: literals(SENSITIVITIES),
  multiplier: Type.Number(),
  signals: Type.Array(
    Type.Object({
      name: Type.String(),
      value: Type.Unknown(),
      contribution: Type.Number(),
      reason: Type.Optional(literals(REASON_CODES)),
      detail: Type.Optional(Type.String()),
    }),
  ),
})

const ExplanationSchema = Type.Object({
  effectiveRoles: Type.Array(Type.String()),
  matchedRules: Type.Array(
    Type.Object({
      ptype: Type.String(),
      rule: Type.Array(Type.String()),
      source: Type.Optional(Type.String({ description: 'file:line of the rule' })),
    }),
  ),
  domain: Type.String(),
})

export const DecideResponseSchema = Type.Object({
  decision: literals(['allow', 'deny', 'step_up'] as const),
  decisionId: Type.String({ description: 'UUIDv7, sortable by time' }),
  subject: Type.Optional(Type.Object({ id: Type.String(), tenant: Type.Optional(Type.String()) }, { description: 'Who was decided for, when a token named them' })),
  reasons: Type.Array(literals(REASON_CODES)),
  policyVersion: Type.String({ description: 'Hash of the loaded policy files' }),
  stepUp: Type.Optional(StepUpSchema),
  risk: Type.Optional(RiskSchema),
  explanation: Type.Optional(ExplanationSchema),
})

// Compile-time guard: the engine's Decision must always fit the response schema.
const fitsSchema: (d: Decision) => Static<typeof DecideResponseSchema> = (d) => d
void fitsSchema

export const BatchItemSchema = Type.Object(
  {
    action: Name('Action, e.g. read'),
    resource: ResourceSchema,
  },
  { additionalProperties: false },
)

/** The hard ceiling of the schema; PDP_BATCH_MAX (at most this) is the operator's limit. */
export const BATCH_CEILING = 10_000

export const DecideBatchRequestSchema = Type.Object(
  {
    subject: Type.Optional(SubjectSchema),
    token: Type.Optional(
      Type.String({ minLength: 1, maxLength: 65536, description: 'A JWT from the configured issuer, instead of subject; the PDP verifies it' }),
    ),
    items: Type.Array(BatchItemSchema, {
      minItems: 1,
      maxItems: BATCH_CEILING,
      description: 'The (action, resource) pairs to decide; at most PDP_BATCH_MAX (default 100)',
    }),
    context: Type.Optional(ContextSchema),
    explain: Type.Optional(Type.Boolean({ description: 'Include matched rules and effective roles' })),
  },
  { additionalProperties: false },
)

export const DecideBatchResponseSchema = Type.Object({
  decisions: Type.Array(DecideResponseSchema, { description: 'One decision per item, in the order of the items' }),
})
