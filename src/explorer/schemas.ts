import { Type } from 'typebox'
import { Id } from '../schemas/common.js'
import { DecideRequestSchema, DecideResponseSchema } from '../schemas/decide.js'

/** What to explain: a request as /decide takes it, a pasted decision-log line, or a decision still in the ring. */
const Subjects = {
  request: Type.Optional(DecideRequestSchema),
  logLine: Type.Optional(Type.String({ minLength: 1, maxLength: 65_536, description: 'One line of the decision log (type "decision")' })),
  decisionId: Type.Optional(Id('A decision still held in memory (PDP_EXPLORER_RING)')),
}

export const ExplainBodySchema = Type.Object(
  {
    ...Subjects,
    policy: Type.Optional(Type.Enum(['active', 'shadow'], { description: 'Which policy directory decides (default active)' })),
  },
  { additionalProperties: false, description: 'Exactly one of request, logLine and decisionId' },
)

export const WhatIfBodySchema = Type.Object(
  {
    ...Subjects,
    shadow: Type.Optional(Type.Boolean({ description: 'Compare with the shadow policy directory (PDP_SHADOW_POLICY_DIR)' })),
    files: Type.Optional(
      Type.Record(Type.String({ maxLength: 64 }), Type.String(), {
        maxProperties: 8,
        description: 'Policy files (name → full text) replacing the active ones in memory; never written to disk',
      }),
    ),
  },
  { additionalProperties: false, description: 'Exactly one of request, logLine and decisionId, and either shadow: true or files' },
)

const RuleSchema = Type.Object({
  ptype: Type.String(),
  rule: Type.Array(Type.String()),
  text: Type.String({ description: 'The rule in the policy file\'s canonical form' }),
  file: Type.Optional(Type.String()),
  line: Type.Optional(Type.Integer()),
})

const ExplainedSchema = Type.Object({
  decision: DecideResponseSchema,
  rules: Type.Array(RuleSchema),
  roles: Type.Array(Type.Object({ role: Type.String(), sources: Type.Array(Type.Enum(['policy', 'request', 'grant'])) })),
  gateways: Type.Array(
    Type.Object({
      gateway: Type.String(),
      endpoint: Type.String(),
      status: Type.Integer(),
      headers: Type.Record(Type.String(), Type.String()),
    }),
    { description: 'The answer each forward-auth gateway would get: status and headers (RFC 9470 challenge on a step-up)' },
  ),
})

/** The request explained, the logged verdict it came with (for a log line or a remembered decision), and the explanation. */
export const ExplainResponseSchema = Type.Object({
  request: Type.Record(Type.String(), Type.Unknown(), { description: 'The request as decided (a log line\'s input)' }),
  logged: Type.Optional(Type.Object({ decisionId: Type.String(), time: Type.String(), verdict: Type.String(), reasons: Type.Array(Type.String()) })),
  masked: Type.Array(Type.String({ description: 'Fields the log redacted, decided here as "[redacted]"' })),
  policy: Type.Object({ role: Type.String(), revision: Type.String() }),
  result: ExplainedSchema,
})

export const WhatIfResponseSchema = Type.Object({
  request: Type.Record(Type.String(), Type.Unknown()),
  masked: Type.Array(Type.String()),
  active: Type.Object({ revision: Type.String(), result: ExplainedSchema }),
  candidate: Type.Object({
    source: Type.Enum(['shadow', 'edit']),
    revision: Type.String(),
    /** For an edit: the revision of the files on disk the edit was applied to. */
    base: Type.Optional(Type.String()),
    result: ExplainedSchema,
  }),
  differences: Type.Array(Type.Object({ field: Type.String(), active: Type.Unknown(), candidate: Type.Unknown() })),
})

export const PolicyFilesResponseSchema = Type.Object({
  revision: Type.String({ description: 'Revision of the files as read now (differs from the active one while an edit on disk is rejected)' }),
  activeRevision: Type.String(),
  files: Type.Record(Type.String(), Type.String()),
})

export const LiveQuerySchema = Type.Object(
  {
    verdict: Type.Optional(Type.Enum(['allow', 'deny', 'step_up'])),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    subject: Type.Optional(Id('Only this subject')),
    route: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Text found in "action type/id"' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
)

export const DecisionLineSchema = Type.Record(Type.String(), Type.Unknown(), { description: 'A decision-log line (redacted as the log is)' })

export const StatsResponseSchema = Type.Object({
  minutes: Type.Array(
    Type.Object({
      minute: Type.String(),
      verdicts: Type.Record(Type.String(), Type.Integer()),
      reasons: Type.Record(Type.String(), Type.Integer()),
    }),
  ),
  streams: Type.Object({ open: Type.Integer(), max: Type.Integer() }),
})

export const DevicesResponseSchema = Type.Object({
  subject: Type.String(),
  devices: Type.Array(
    Type.Object({
      id: Type.String(),
      trust: Type.Optional(Type.Number()),
      firstSeen: Type.Optional(Type.Integer()),
      lastSeen: Type.Optional(Type.Integer()),
      sessions: Type.Array(Type.String()),
    }),
  ),
})
