import t from 'tap'
import { decisionId } from '../../src/engine/ids.js'

t.test('decision ids are UUIDv7: unique, version and variant set, sortable by time', async (t) => {
  const ids: string[] = []
  const start = Date.parse('2026-03-01T12:00:00Z')
  // Many ids in one millisecond, then later milliseconds: more than one pool of random bytes.
  for (let i = 0; i < 1500; i++) ids.push(decisionId(start))
  for (let i = 1; i <= 1500; i++) ids.push(decisionId(start + i))
  t.equal(new Set(ids).size, ids.length, 'no id repeats')
  t.ok(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)), 'version 7, RFC 9562 variant')
  t.same([...ids].sort(), ids, 'lexical order is creation order')
  t.equal(ids[0]!.slice(0, 13).replace('-', ''), start.toString(16).padStart(12, '0'), 'the first 48 bits are the millisecond')
})
