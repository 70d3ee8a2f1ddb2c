import { Type, type TStringOptions } from 'typebox'
import { IDENTIFIER_PATTERN } from '../engine/identifiers.js'

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

/**
 * An identifier a caller sends (subject, tenant, session, device, token id, role, resource type, action):
 * ids become store keys and log fields, so control characters and unpaired surrogates are refused (400).
 */
export const Identifier = (maxLength: number, options: TStringOptions = {}) =>
  Type.String({ minLength: 1, maxLength, pattern: IDENTIFIER_PATTERN, ...options })

/** Subjects, sessions, devices, token and resource ids. */
export const Id = (description?: string) => Identifier(256, description === undefined ? {} : { description })
/** Tenants, roles, resource types, actions. */
export const Name = (description?: string) => Identifier(128, description === undefined ? {} : { description })
