/** Reads a Bearer challenge back into its scheme and auth-params, unescaping quoted values, so tests can check what a client receives. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ')
  const scheme = space < 0 ? header : header.slice(0, space)
  const params: Record<string, string> = {}
  const re = /([A-Za-z_]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g
  for (const m of header.slice(space + 1).matchAll(re)) {
    params[m[1]!] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!
  }
  return { scheme, params }
}
