import { Type } from 'typebox'

export const PolicyStatusSchema = Type.Object({
  activeRevision: Type.String({ description: 'Hash of the active policy files' }),
  engine: Type.String({ description: 'Evaluator in use: indexed or casbin' }),
  ruleCount: Type.Integer(),
  lastSuccess: Type.String({ description: 'ISO time of the last successful activation' }),
  lastError: Type.Optional(Type.Object({ message: Type.String(), at: Type.String() })),
  reloads: Type.Object({ success: Type.Integer(), failure: Type.Integer() }),
})
