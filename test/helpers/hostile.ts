import fc from 'fast-check'

/**
 * Generators of hostile request input: every class a caller can send that once reached a 5xx
 * (unpaired surrogates, control characters, prototype names, huge numbers, deep nesting, wrong types,
 * unknown fields), mixed into otherwise valid bodies so that most of them get past the first check.
 */

/** Names that are properties of every plain object. */
export const PROTOTYPE_NAMES = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf', '__defineGetter__']

/** Put in place of a number, then turned into literal JSON numbers no JavaScript number holds exactly. */
const HUGE = '\u0000huge\u0000'
const HUGE_LITERALS = ['1e400', '-1e400', '123456789012345678901234567890', '1e-400', '-0']

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c))
const control = fc.constantFrom('\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u009f', '\u2028', '\u2029')

/** A string with unpaired surrogates or control characters spliced in. */
const tainted = fc
  .tuple(fc.string({ maxLength: 8 }), fc.oneof(loneSurrogate, control), fc.string({ maxLength: 8 }))
  .map(([a, bad, b]) => `${a}${bad}${b}`)

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: tainted },
  { weight: 3, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '%', '%00', '%ZZ', ':', '*', '../..', 'x'.repeat(300), '\ufffd', '\ufeff') },
)

const hugeNumber = fc.oneof(
  fc.constant(HUGE),
  fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, -Number.MAX_SAFE_INTEGER - 2, 1e308, -1e308, 2 ** 64, 5e-324, 1e11 + 1),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
)

/** Nested arrays and objects, up to a depth past the body guard's limit. */
const deep = fc.integer({ min: 1, max: 40 }).map((depth) => {
  let value: unknown = 'leaf'
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { n: value }
  return value
})

/** Any value of the wrong kind for a field. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: hugeNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], 0, -1) },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.dictionary(hostileString, fc.oneof(hostileString, hugeNumber), { maxKeys: 3 }) },
  { weight: 1, arbitrary: fc.array(hostileString, { maxLength: 3 }) },
)

/** Mostly the valid value, sometimes a hostile one in its place. */
export const either = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 40, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: hostileValue })

/** `value` about once in `n` draws, null otherwise. */
const rarely = <T>(value: fc.Arbitrary<T>, n: number) => fc.oneof({ weight: n - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: value })

/**
 * An object whose fields are mostly valid and now and then hostile; the `required` ones are nearly always
 * there, the others come and go, and once in a while an unknown field joins them.
 */
export function shape(fields: Record<string, fc.Arbitrary<unknown>>, required: string[] = []): fc.Arbitrary<Record<string, unknown>> {
  const mixed = Object.fromEntries(Object.entries(fields).map(([k, a]) => [k, either(a)]))
  return fc
    .tuple(
      fc.record(mixed, { requiredKeys: required }),
      rarely(fc.dictionary(hostileString, hostileValue, { minKeys: 1, maxKeys: 2 }), 40),
      required.length === 0 ? fc.constant(null) : rarely(fc.constantFrom(...required), 30),
    )
    .map(([known, extra, dropped]) => {
      const out: Record<string, unknown> = extra ? { ...extra, ...known } : { ...known }
      if (dropped !== null) delete out[dropped]
      return out
    })
}

/** An id from a small pool (so requests meet each other's state), prototype names included. */
export const id = fc.constantFrom('carol', 'alice', 'bob', 'dave', ...PROTOTYPE_NAMES)
const roles = fc.array(fc.constantFrom('employee', 'manager', 'admin', 'constructor', '__proto__'), { maxLength: 3 })
const tenant = fc.constantFrom('acme', 'globex', 'default', '__proto__', 'constructor', 'toString')
const ip = fc.constantFrom('8.8.8.8', '81.2.69.160', '203.0.113.7', '::1', '10.0.0.1', '2001:db8::1')
const attributes = fc.dictionary(fc.oneof({ weight: 40, arbitrary: fc.constantFrom('owner', 'team', 'password', 'apiKey', 'pin') }, { weight: 1, arbitrary: hostileString }), either(id), { maxKeys: 3 })
const resource = shape({ type: fc.constantFrom('documents', 'users', 'system.logs', 'constructor', '__proto__'), id, attributes }, ['type'])
const action = fc.constantFrom('read', 'update', 'create', 'delete', 'toString', '__proto__')

const context = shape({
  ip,
  userAgent: fc.string({ maxLength: 20 }),
  device: shape({ id, managed: fc.boolean(), encrypted: fc.boolean(), osUpToDate: fc.boolean() }, ['id']),
  session: shape({ id, authTime: fc.integer({ min: 1_700_000_000, max: 1_900_000_000 }), amr: fc.array(fc.constantFrom('pwd', 'otp', 'hwk', 'mfa'), { maxLength: 3 }), acr: fc.string({ maxLength: 8 }) }),
  sensitivity: fc.constantFrom('low', 'medium', 'high', 'critical'),
})
const subject = shape({ id, roles, tenant, attributes }, ['id'])

export const decideBody = shape({ subject, action, resource, context, explain: fc.boolean() }, ['subject', 'action', 'resource'])
export const batchBody = shape({ subject, items: fc.array(shape({ action, resource }, ['action', 'resource']), { minLength: 1, maxLength: 3 }), context, explain: fc.boolean() }, ['subject', 'items'])

/** Times are epoch seconds near the test clock (`nowSec`). */
export const revocationBody = (nowSec: number) =>
  fc.oneof(
    shape({ jti: id, expiresAt: fc.integer({ min: nowSec, max: nowSec + 3600 }) }, ['jti']),
    shape({ sessionId: id }, ['sessionId']),
    shape({ subject: id, before: fc.integer({ min: nowSec - 3600, max: nowSec }) }, ['subject']),
  )

const grantCommon = {
  subject: id,
  tenant,
  resource: shape({ type: fc.constantFrom('documents', 'constructor'), id }, ['type']),
  durationSeconds: fc.integer({ min: 1, max: 7200 }),
  justification: fc.string({ minLength: 1, maxLength: 20 }),
}
const grantRequired = ['subject', 'durationSeconds', 'justification']
export const grantBody = fc.oneof(
  shape({ ...grantCommon, role: fc.constantFrom('employee', 'manager', 'admin', 'constructor', 'toString') }, [...grantRequired, 'role']),
  shape({ ...grantCommon, permission: shape({ resourceType: fc.constantFrom('documents', 'users', '__proto__'), action }, ['resourceType', 'action']) }, [...grantRequired, 'permission']),
)

// Who approves comes from the credential: the body is empty, and anything in it is refused.
export const approveBody = shape({}, [])

export const eventBody = (nowSec: number) =>
  shape({
    type: fc.constantFrom('login_success', 'login_failure', 'mfa_success', 'mfa_failure', 'logout', 'password_reset', 'suspicious_activity'),
    subject: id,
    tenant,
    ip,
    deviceId: id,
    sessionId: id,
    userAgent: fc.string({ maxLength: 20 }),
    time: fc.integer({ min: nowSec - 600, max: nowSec }),
  }, ['type', 'subject'])

/** A top-level body: usually the route's shape, sometimes anything at all. */
export const body = (routeShape: fc.Arbitrary<unknown>) => fc.oneof({ weight: 19, arbitrary: routeShape }, { weight: 1, arbitrary: hostileValue })

/** A path segment: a valid or hostile id, URI-encoded, or a raw percent sequence no decoder accepts. */
export const segment = fc.oneof(
  { weight: 3, arbitrary: fc.oneof(id, hostileString).map((s) => encodeURIComponent(s.replace(/\p{Cs}/gu, '\ufffd'))) },
  { weight: 1, arbitrary: fc.constantFrom('%00', '%0A', '%ED%A0%80', '%FF', '%C0%AF', '%', '%2F', '..', '%2e%2e') },
)

/** The JSON text of a generated body, with the huge-number placeholders turned into literal numbers. */
export function toJson(value: unknown, pick: number): string {
  let i = pick
  return JSON.stringify(value).replaceAll(JSON.stringify(HUGE), () => HUGE_LITERALS[i++ % HUGE_LITERALS.length]!)
}
