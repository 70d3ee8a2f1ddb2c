/**
 * One component of a store key, URI-encoded so that an id holding ":" can never collide with another key.
 * encodeURIComponent throws on an unpaired surrogate; the HTTP schemas and the token verifier keep those
 * out, and for callers of the engine library they are written as %uXXXX, a form encodeURIComponent never
 * produces (it escapes "%" itself), so the encoding stays total and free of collisions.
 */
export function keyPart(value: string): string {
  try {
    return encodeURIComponent(value)
  } catch {
    return value.replace(/\p{Cs}|\P{Cs}+/gu, (run) =>
      /\p{Cs}/u.test(run) ? `%u${run.charCodeAt(0).toString(16).toUpperCase()}` : encodeURIComponent(run),
    )
  }
}
