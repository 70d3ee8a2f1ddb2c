import { Type } from 'typebox'

export const ErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'Stable machine code, e.g. PDP_ERR_VALIDATION' }),
    error: Type.String(),
    message: Type.String(),
    field: Type.Optional(Type.String({ description: 'JSON pointer to the offending field, for validation errors' })),
  },
  { $id: 'Error', additionalProperties: false },
)
