/** The credential of an `Authorization: Bearer <credential>` header (RFC 6750), or undefined for any other header. */
export function bearerToken(header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^Bearer +([^\s]+) *$/i.exec(header)?.[1]
}
