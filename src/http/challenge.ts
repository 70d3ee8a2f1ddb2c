import type { ReasonCode, StepUp } from '../engine/types.js'

/** Reasons that mean "this credential is no good" rather than "this request is not allowed": answered with 401 invalid_token. */
export const CREDENTIAL_REASONS: ReadonlySet<ReasonCode> = new Set(['token_invalid', 'token_expired', 'token_revoked', 'session_revoked', 'session_expired'])

/** RFC 7230 quoted-string: backslash-escape quote and backslash; drop control characters. */
function quoted(value: string): string {
  return `"${value.replace(/[\u0000-\u001f\u007f]/g, '').replace(/(["\\])/g, '\\$1')}"`
}

/**
 * The RFC 9470 challenge for a step-up: the identity provider should re-authenticate the user with
 * one of `acr_values` (space-separated, in order of preference) no longer than `max_age` seconds ago.
 */
export function stepUpChallenge(stepUp: Pick<StepUp, 'acrValues' | 'maxAge'>, description = 'A stronger or more recent authentication is required'): string {
  const params = [`error="insufficient_user_authentication"`, `error_description=${quoted(description)}`]
  if (stepUp.acrValues.length > 0) params.push(`acr_values=${quoted(stepUp.acrValues.join(' '))}`)
  params.push(`max_age="${Math.max(0, Math.floor(stepUp.maxAge))}"`)
  return `Bearer ${params.join(', ')}`
}

/** RFC 6750 challenge for a missing, malformed, expired or revoked token. */
export function invalidTokenChallenge(description: string): string {
  return `Bearer error="invalid_token", error_description=${quoted(description)}`
}
