/**
 * The one catalogue of HTTP errors the PDP answers with. Codes are stable: clients and dashboards
 * match on them, so they are only ever added, never renamed.
 */
export const ERRORS = {
  VALIDATION: { code: 'PDP_ERR_VALIDATION', statusCode: 400, title: 'Bad Request' },
  MALFORMED_JSON: { code: 'PDP_ERR_MALFORMED_JSON', statusCode: 400, title: 'Bad Request' },
  UNSUPPORTED_MEDIA_TYPE: { code: 'PDP_ERR_UNSUPPORTED_MEDIA_TYPE', statusCode: 415, title: 'Unsupported Media Type' },
  BODY_TOO_LARGE: { code: 'PDP_ERR_BODY_TOO_LARGE', statusCode: 413, title: 'Payload Too Large' },
  NOT_FOUND: { code: 'PDP_ERR_NOT_FOUND', statusCode: 404, title: 'Not Found' },
  UNAUTHORIZED: { code: 'PDP_ERR_UNAUTHORIZED', statusCode: 401, title: 'Unauthorized' },
  FORBIDDEN: { code: 'PDP_ERR_FORBIDDEN', statusCode: 403, title: 'Forbidden' },
  /** A grant for the caller's own subject, or the approval of one. */
  SELF_GRANT: { code: 'PDP_ERR_SELF_GRANT', statusCode: 403, title: 'Forbidden' },
  /** An approval by the admin who created the grant, or by the shared static admin token. */
  FOUR_EYES: { code: 'PDP_ERR_FOUR_EYES', statusCode: 403, title: 'Forbidden' },
  CONFLICT: { code: 'PDP_ERR_CONFLICT', statusCode: 409, title: 'Conflict' },
  RATE_LIMITED: { code: 'PDP_ERR_RATE_LIMITED', statusCode: 429, title: 'Too Many Requests' },
  NOT_READY: { code: 'PDP_ERR_NOT_READY', statusCode: 503, title: 'Service Unavailable' },
  INTERNAL: { code: 'PDP_ERR_INTERNAL', statusCode: 500, title: 'Internal Server Error' },
} as const

export type ErrorKind = keyof typeof ERRORS

/** An error a route throws on purpose; the central handler renders it with its catalogue entry. */
export class PdpHttpError extends Error {
  readonly statusCode: number
  readonly code: string
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly field?: string,
  ) {
    super(message)
    this.name = 'PdpHttpError'
    this.statusCode = ERRORS[kind].statusCode
    this.code = ERRORS[kind].code
  }
}
