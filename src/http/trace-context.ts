/**
 * The trace id of a W3C Trace Context `traceparent` header (version-traceid-parentid-flags), or undefined when
 * there is none or it is malformed: an invalid header is ignored, as the specification asks, never an error.
 */
export function traceIdOf(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined) return undefined
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(value.trim())
  if (!match) return undefined
  const [, version, traceId, parentId, , rest] = match
  // Version ff is forbidden; version 00 has nothing after the flags; all-zero ids are invalid.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined
  if (/^0+$/.test(traceId!) || /^0+$/.test(parentId!)) return undefined
  return traceId
}
