/**
 * What an identifier (subject, tenant, session, device, token id, role, resource type ...) may not hold:
 * control characters (C0, DEL, C1), unpaired UTF-16 surrogates and the line and paragraph separators.
 * Ids become store keys and log fields; an unpaired surrogate cannot be URI-encoded or written as
 * UTF-8, and control characters split or forge log lines. The HTTP schemas use the same pattern.
 */
export const IDENTIFIER_PATTERN = '^[^\\p{Cc}\\p{Cs}\\u2028\\u2029]*$'

// The `u` flag makes \p{Cs} match a surrogate only when it is unpaired (a pair is one code point).
const IDENTIFIER = new RegExp(IDENTIFIER_PATTERN, 'u')

export const isIdentifier = (value: string): boolean => IDENTIFIER.test(value)

const UNPAIRED_SURROGATE = /\p{Cs}/u

/** Whether a string is well-formed UTF-16 (String.prototype.isWellFormed, which the ES2023 library lacks). */
export const isWellFormed = (value: string): boolean => !UNPAIRED_SURROGATE.test(value)

/** The string with each unpaired surrogate replaced by U+FFFD, for echoing bad input back safely. */
export const wellFormed = (value: string): string => value.replace(/\p{Cs}/gu, '\ufffd')
