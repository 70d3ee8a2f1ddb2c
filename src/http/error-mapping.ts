import type { FastifyError } from 'fastify'
import { IDENTIFIER_PATTERN } from '../engine/identifiers.js'
import { StoreUnavailableError } from '../store/state-store.js'
import { ERRORS, PdpHttpError, type ErrorKind } from '../errors.js'

/**
 * The one place a failure becomes an HTTP answer: the error catalogue's entry (src/errors.ts) as the JSON body every
 * route answers with. Forward-auth endpoints translate these further into what a gateway may see (src/routes/authz.ts).
 */

export interface ErrorBody {
  statusCode: number
  code: string
  error: string
  message: string
  field?: string
}

export function errorBody(kind: ErrorKind, message: string, field?: string): ErrorBody {
  const entry = ERRORS[kind]
  const body: ErrorBody = { statusCode: entry.statusCode, code: entry.code, error: entry.title, message }
  if (field !== undefined) body.field = field
  return body
}

interface AjvError {
  keyword?: string
  instancePath: string
  message?: string
  params: Record<string, unknown>
}

function validationField(error: AjvError): string {
  const extra = error.params.missingProperty ?? error.params.additionalProperty
  return `${error.instancePath}${typeof extra === 'string' ? `/${extra}` : ''}` || '/'
}

function describeValidation(error: AjvError): string {
  const field = validationField(error)
  if (typeof error.params.additionalProperty === 'string') return `${field} is not a known field`
  if (typeof error.params.missingProperty === 'string') return `${field} is required`
  if (error.keyword === 'pattern' && error.params.pattern === IDENTIFIER_PATTERN) {
    return `${field} must not contain control characters or unpaired surrogates`
  }
  return `${field} ${error.message ?? 'is invalid'}`
}

/** Maps anything thrown during a request to a catalogue entry; 5xx details stay in the log. */
export function toErrorBody(error: FastifyError): ErrorBody {
  if (error instanceof PdpHttpError) return errorBody(error.kind, error.message, error.field)
  // The control plane's writes need the store; when it is down, say so (503) rather than fail obscurely.
  if ((error as Error) instanceof StoreUnavailableError) return errorBody('NOT_READY', 'the state store is unavailable; nothing was changed')
  if (error.validation && error.validation.length > 0) {
    const first = error.validation[0] as unknown as AjvError
    return errorBody('VALIDATION', describeValidation(first), validationField(first))
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errorBody('BODY_TOO_LARGE', 'request body is larger than the configured limit')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errorBody('UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return errorBody('MALFORMED_JSON', 'request body is empty')
  }
  const status = error.statusCode ?? 500
  if (status === 400 && (error instanceof SyntaxError || error.code?.startsWith('FST_ERR_CTP'))) {
    return errorBody('MALFORMED_JSON', 'request body is not valid JSON')
  }
  if (status === 413) return errorBody('BODY_TOO_LARGE', 'request body is larger than the configured limit')
  if (status === 429) return errorBody('RATE_LIMITED', 'too many requests')
  if (status >= 400 && status < 500) {
    return { statusCode: status, code: ERRORS.VALIDATION.code, error: 'Bad Request', message: 'request rejected' }
  }
  return errorBody('INTERNAL', 'Internal Server Error')
}
