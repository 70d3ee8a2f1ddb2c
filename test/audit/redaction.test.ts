import fc from 'fast-check'
import t from 'tap'
import { createAuditLog, decisionLine, redaction } from '../../src/audit/audit-log.js'
import type { DecisionLogEntry, LoggedRequest } from '../../src/engine/ports.js'

// Keys as the README's rule classifies them: the generator draws from both, the reference knows which is which.
const LONG_SECRET = `${'x'.repeat(70)}Secret`
const SECRET_KEYS = ['password', 'apiToken', 'pin', 'otp_code', 'sessionCookie', 'X-Api-Key', LONG_SECRET]
const READABLE_KEYS = ['team', 'owner', 'pinned', 'footprint', 'a', 'b', 'a.b', '', '__proto__', 'list', `${'y'.repeat(70)}Name`]
const SECRET = new Set(SECRET_KEYS)

const entryOf = (request: unknown): DecisionLogEntry => ({
  request: request as LoggedRequest,
  decision: { decision: 'allow', decisionId: 'd-1', reasons: ['policy_allow'], policyVersion: 'v1' },
  time: Date.parse('2026-03-01T12:00:00Z'),
  latencyMs: 0.25,
})

/** The simplest correct redaction, as the log did it before: a deep copy of everything, every path spelled out. */
function reference(value: unknown, path: string, configured: ReadonlySet<string>, masked: string[]): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map((v, i) => reference(v, `${path}.${i}`, configured, masked))
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    const childPath = path === '' ? key : `${path}.${key}`
    const redact = configured.has(childPath) || SECRET.has(key)
    if (redact) masked.push(childPath)
    Object.defineProperty(out, key, { value: redact ? '[redacted]' : reference(v, childPath, configured, masked), enumerable: true })
  }
  return out
}

/** Every path in a value, as the log spells them (array items by index). */
function pathsOf(value: unknown, path: string, into: string[]): string[] {
  if (value === null || typeof value !== 'object') return into
  if (Array.isArray(value)) value.forEach((v, i) => pathsOf(v, `${path}.${i}`, into))
  else {
    for (const [key, v] of Object.entries(value)) {
      const childPath = path === '' ? key : `${path}.${key}`
      into.push(childPath)
      pathsOf(v, childPath, into)
    }
  }
  return into
}

const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean(), fc.constant(null)), tie('object'), tie('array')),
  object: fc.dictionary(fc.constantFrom(...SECRET_KEYS, ...READABLE_KEYS), tie('tree'), { maxKeys: 4 }),
  array: fc.array(tie('tree'), { maxLength: 3 }),
}))

// Through JSON text, as a request arrives: "__proto__" is then an ordinary own key. Keys beside the request's own
// (the engine logs what it was given) reach the paths at the root, an empty key's among them.
const requestArb = fc
  .record({ subject: tree, resource: tree, context: tree, beside: fc.dictionary(fc.constantFrom('', 'a', 'password'), tree, { maxKeys: 2 }) })
  .map(({ subject, resource, context, beside }) =>
    JSON.parse(JSON.stringify({ ...beside, subject: { id: 'bob', attributes: subject }, action: 'read', resource: { type: 'documents', attributes: resource }, context })),
  )
const caseArb = requestArb.chain((request) =>
  fc.record({
    request: fc.constant(request),
    configured: fc.subarray([...pathsOf(request, '', []), 'subject.attributes.missing', 'context.a.b', '.a', 'a', 'a.b', '0.a', 'resource.attributes.list.0']),
  }),
)

t.test('the redaction matches a full deep copy: same input, same masked list, the request itself untouched', async (t) => {
  let checked = 0
  fc.assert(
    fc.property(caseArb, ({ request, configured }) => {
      const before = JSON.stringify(request)
      const masked: string[] = []
      const expected = reference(request, '', new Set(configured), masked)
      const line = decisionLine(entryOf(request), redaction(configured))
      checked++
      return JSON.stringify(line.input) === JSON.stringify(expected) && JSON.stringify(line.masked) === JSON.stringify(masked) && JSON.stringify(request) === before
    }),
    { numRuns: 400, seed: 17 },
  )
  t.equal(checked, 400)
})

t.test('nothing to redact: the request is logged as it is; a redaction copies only the branch it changes', async (t) => {
  const request = JSON.parse('{"subject":{"id":"bob","attributes":{"team":"sales","pinned":"yes"}},"action":"read","resource":{"type":"documents","attributes":{"owner":"bob","tags":["a","b"]}},"context":{"ip":"81.2.69.142"}}')
  const plain = decisionLine(entryOf(request), redaction(['subject.attributes.ssn', 'resource.attributes.missing.deep']))
  t.same(plain.masked, [])
  t.equal(plain.input, request, 'no copy when no key matches')

  const rules = redaction(['resource.attributes.owner'])
  const line = decisionLine(entryOf(request), rules)
  const input = line.input as typeof request
  t.same(line.masked, ['resource.attributes.owner'])
  t.equal(input.resource.attributes.owner, '[redacted]')
  t.equal(request.resource.attributes.owner, 'bob', 'the engine\'s request keeps its value')
  t.equal(input.subject, request.subject, 'an untouched branch is shared, not copied')
  t.equal(input.resource.attributes.tags, request.resource.attributes.tags)
})

t.test('a request JSON has no text for is still written, through pino, and never throws into the decision', async (t) => {
  const written: string[] = []
  const log = createAuditLog({ destination: 'stdout', redactPaths: [], stream: { write: (chunk: string) => void written.push(chunk) } })
  const request = { subject: { id: 'bob', attributes: { big: 10n ** 20n, password: 'hunter2' } }, action: 'read', resource: { type: 'documents' } }
  t.doesNotThrow(() => log.write(() => entryOf(request)))
  t.equal(written.length, 1)
  const line = JSON.parse(written[0]!)
  t.match(line, { level: 'info', type: 'decision', decision_id: 'd-1', masked: ['subject.attributes.password'], input: { subject: { attributes: { password: '[redacted]' } } } })
  t.notMatch(written[0]!, /hunter2/)
  await log.close()
})
