import type { CallerScope } from '../plugins/caller-auth.js'

/**
 * OpenAPI security requirements, declared next to the hooks that enforce them. OpenAPI 3.1 lets a non-OAuth
 * requirement list role names: ours are the scope the bearer credential (admin token or JWT) must carry.
 */
export const SECURITY_SCHEMES = {
  bearer: {
    type: 'http',
    scheme: 'bearer',
    description:
      'Caller credential: the admin token (PDP_ADMIN_TOKEN) or a JWT whose scope holds pdp:admin (/admin/*), pdp:events (/events) or pdp:decide (/decide)',
  },
  subject: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: "The end user's access token, passed on by the gateway; the decision is about its subject",
  },
} as const

type SecurityRequirements = Record<string, string[]>[]

/** The bearer credential with this scope is required. */
export const requires = (scope: CallerScope): SecurityRequirements => [{ bearer: [scope] }]
/** A bearer credential with this scope counts when present, but none is needed. */
export const accepts = (scope: CallerScope): SecurityRequirements => [{}, { bearer: [scope] }]
/** Forward-auth: no token gets the 401 challenge, which is an answer, not a refusal of the call. */
export const SUBJECT_TOKEN: SecurityRequirements = [{}, { subject: [] }]
/** Probes need no credential. */
export const PUBLIC: SecurityRequirements = []
