import t from 'tap'
import { createPdpClient, isPlanFilter, planPredicate, planRegexp, planToPrisma, planToSql, PlanFilterError, toPrismaWhere, toSqlWhere, type PlanFilter } from '../../src/client/index.js'
import { manualClock, trustedContext } from '../helpers/build.js'
import { livePdp } from '../helpers/live-pdp.js'
import { LIVE_TIMEOUT_MS, refusedUrl } from './fixtures.js'

const clock = manualClock()
const carol = { id: 'carol', tenant: 'acme' }
const documents = [
  { id: 'd1', attributes: { owner: 'carol' } },
  { id: 'd2', attributes: { owner: 'dave' } },
  { id: 'd3', attributes: {} },
]
const FIELDS = { 'resource.id': 'id', 'resource.attributes.owner': 'owner', 'resource.attributes.team': 'team' } as const

t.test('plan() from a running PDP, and the answer as a predicate, a SQL clause and a Prisma where', async (t) => {
  const pdp = await livePdp(t, { now: clock.now })
  const client = createPdpClient({ baseUrl: pdp.url, timeoutMs: LIVE_TIMEOUT_MS })
  const plan = await client.plan({ subject: carol, action: 'read', resource: { type: 'documents' }, context: trustedContext(clock.now()) })
  t.match(plan, { plan: 'conditional', reasons: ['policy_allow'], policyVersion: /^[0-9a-f]{16}$/ })
  t.equal(plan.failure, undefined)
  t.same(documents.filter(planPredicate(plan)).map((d) => d.id), ['d1'])
  t.same(planToSql(plan, FIELDS, { dialect: 'postgres' }), { sql: '(owner IS NOT NULL AND owner = $1::text)', params: ['carol'] })
  t.same(planToSql(plan, FIELDS), { sql: '(owner IS NOT NULL AND owner = ?)', params: ['carol'] })
  t.same(planToPrisma(plan, FIELDS), { owner: { equals: 'carol' } })

  const all = await client.plan({ subject: carol, action: 'create', resource: { type: 'documents' }, context: trustedContext(clock.now()) })
  t.match(all, { plan: 'always_allowed' })
  t.same(planToSql(all, FIELDS), { sql: '(1 = 1)', params: [] })
  t.same(planToPrisma(all, FIELDS), { AND: [] })
  t.same(documents.filter(planPredicate(all)).length, 3)

  const nowS = Math.floor(clock.now() / 1000)
  const risky = await client.plan({ subject: carol, action: 'read', resource: { type: 'documents' }, context: { device: { id: 'new-phone' }, session: { authTime: nowS - 600, amr: ['pwd'] }, sensitivity: 'high' } })
  t.match(risky, { plan: 'conditional', stepUp: { level: String } })
  t.same(planToSql(risky, FIELDS), { sql: '(1 = 0)', params: [] }, 'a step-up is not an allow: nothing is listed until it is done')
  t.same(planToPrisma(risky, FIELDS), { OR: [] })
  t.same(documents.filter(planPredicate(risky)), [])
})

t.test('a PDP that cannot be reached or answers nonsense gives always_denied with the failure', async (t) => {
  const unreachable = await createPdpClient({ baseUrl: await refusedUrl(), timeoutMs: LIVE_TIMEOUT_MS }).plan({ subject: carol, action: 'read', resource: { type: 'documents' } })
  t.match(unreachable, { plan: 'always_denied', reasons: ['pdp_unavailable'], failure: { kind: 'network' } })
  t.notOk('decision' in unreachable)
  const answering = (body: unknown) =>
    createPdpClient({ baseUrl: 'http://pdp.test', fetch: async () => new Response(JSON.stringify(body), { status: 200 }) }).plan({ subject: carol, action: 'read', resource: { type: 'documents' } })
  const base = { decisionId: 'x', policyVersion: 'v', reasons: ['policy_allow'] }
  for (const filter of [undefined, { op: 'eq', field: 'resource.owner', value: 'a' }, { op: 'eq', field: 'resource.id', value: { $ne: 1 } }, { op: 'or', args: [] }, { op: 'drop' }]) {
    t.match(await answering({ ...base, plan: 'conditional', filter }), { plan: 'always_denied', failure: { kind: 'malformed' } }, JSON.stringify(filter))
  }
  t.match(await answering({ ...base, plan: 'maybe' }), { plan: 'always_denied', failure: { kind: 'malformed' } })
  t.match(await answering({ ...base, plan: 'conditional', filter: { op: 'in', field: 'resource.attributes.status', values: ['open'] } }), { plan: 'conditional', failure: undefined })
  const matches = { op: 'matches', field: 'resource.id', function: 'keyMatch2', pattern: '/u/:id' }
  t.match(await answering({ ...base, plan: 'conditional', filter: { ...matches, regex: '^/u/[^/]+$' } }), { plan: 'conditional', failure: undefined })
  // A regex the planner would not write (here JavaScript's "." spelled raw, which SQL reads differently) is refused.
  for (const filter of [{ ...matches, regex: '^/u/.+$' }, { ...matches, regex: '(?=x)' }, { ...matches, function: 'ipMatch', regex: 'x' }, { ...matches, regex: 1 }]) {
    t.match(await answering({ ...base, plan: 'conditional', filter }), { plan: 'always_denied', failure: { kind: 'malformed' } }, JSON.stringify(filter))
  }
})

t.test('a matches node (keyMatch2-5, regexMatch, globMatch) as SQL, Prisma and a predicate', async (t) => {
  const users: PlanFilter = { op: 'matches', field: 'resource.id', function: 'keyMatch2', pattern: '/users/:id', regex: '^/users/[^/]+$' }
  t.ok(isPlanFilter(users))
  t.same(toSqlWhere(users, FIELDS, { dialect: 'postgres', firstParameter: 2 }), { sql: "(COALESCE(id, '') ~ $2::text)", params: ['^/users/[^/]+$'] })
  t.same(toSqlWhere(users, FIELDS), { sql: "(COALESCE(id, '') REGEXP ?)", params: ['^/users/[^/]+$'] })
  t.same(['/users/1', '/users/1/x', '/users/', undefined].map((id) => planPredicate({ plan: 'conditional', filter: users })({ id })), [true, false, false, false])
  const query: PlanFilter = { op: 'matches', field: 'resource.id', function: 'keyMatch5', pattern: '/users/{id}', regex: '^/users/[^/]+$' }
  t.same(toSqlWhere(query, FIELDS, { dialect: 'postgres' }), { sql: "(SPLIT_PART(COALESCE(id, ''), '?', 1) ~ $1::text)", params: ['^/users/[^/]+$'] }, 'keyMatch5 tests the value before its first "?"')
  t.same(toSqlWhere(query, FIELDS), { sql: "(SUBSTR(COALESCE(id, ''), 1, INSTR(COALESCE(id, '') || '?', '?') - 1) REGEXP ?)", params: ['^/users/[^/]+$'] })
  t.equal(matchesFilterOf(query, '/users/1?tab=a/b'), true)

  // SQLite's REGEXP calls regexp(pattern, value): planRegexp is JavaScript's RegExp, as the in-memory test.
  t.equal(planRegexp('^/users/[^/]+$', '/users/1'), 1)
  t.equal(planRegexp('^/users/[^/]+$', '/users/1/2'), 0)
  t.equal(planRegexp('^a[^\\n\\r\\u2028-\\u2029]*$', 'a\nb'), 0, 'a line break is not a "." in JavaScript')
  t.equal(planRegexp('^x$', null), 0)

  const prisma = (fn: string, pattern: string, regex: string) => toPrismaWhere({ op: 'matches', field: 'resource.id', function: fn, pattern, regex } as PlanFilter, FIELDS)
  t.same(prisma('keyMatch2', '/about', '^/about$'), { id: { equals: '/about' } }, 'plain text is equals')
  t.same(prisma('regexMatch', '^/docs/', '^/docs/'), { id: { startsWith: '/docs/' } }, 'an unanchored end is startsWith')
  t.same(prisma('regexMatch', 'draft', 'draft'), { id: { contains: 'draft' } })
  t.same(prisma('regexMatch', '', ''), { OR: [{ id: { contains: '' } }, { id: null }] }, 'a missing value reads as "", which the empty pattern matches')
  t.same(prisma('keyMatch5', '/about', '^/about$'), { OR: [{ id: { equals: '/about' } }, { id: { startsWith: '/about?' } }] }, 'keyMatch5 keeps a query string')
  t.throws(() => toPrismaWhere(users, FIELDS), new PlanFilterError('Prisma has no regular-expression filter, so keyMatch2(resource.id, "/users/:id") (the regex "^/users/[^/]+$") cannot be a Prisma where; use planToSql or planPredicate'))
  t.throws(() => planToPrisma({ plan: 'conditional', filter: { op: 'or', args: [{ op: 'eq', field: 'resource.id', value: 'x' }, users] } }, FIELDS), PlanFilterError, 'never silently dropped inside a larger filter')
})

function matchesFilterOf(filter: PlanFilter, id: string): boolean {
  return planPredicate({ plan: 'conditional', filter })({ id })
}

t.test('SQL and Prisma forms keep a missing attribute as the policy does, and take names only from the map', async (t) => {
  const ne: PlanFilter = { op: 'ne', field: 'resource.attributes.owner', value: 'carol' }
  t.same(toSqlWhere({ op: 'not', arg: ne }, FIELDS), { sql: '(NOT (owner IS NULL OR owner <> ?))', params: ['carol'] })
  t.same(toPrismaWhere(ne, FIELDS), { OR: [{ owner: null }, { owner: { not: 'carol' } }] })
  const prefix: PlanFilter = { op: 'keyMatch', field: 'resource.id', pattern: '/docs/*' }
  t.same(toSqlWhere(prefix, FIELDS, { dialect: 'postgres', firstParameter: 3 }), { sql: "(SUBSTR(COALESCE(id, ''), 1, 6) = $3::text)", params: ['/docs/'] })
  t.same(toPrismaWhere(prefix, FIELDS), { id: { startsWith: '/docs/' } })
  t.same(toPrismaWhere({ op: 'and', args: [{ op: 'exists', field: 'resource.attributes.team' }, { op: 'ge', field: 'resource.attributes.team', value: 2 }] }, FIELDS), {
    AND: [{ team: { not: null } }, { team: { gte: 2 } }],
  })
  t.throws(() => toSqlWhere({ op: 'exists', field: 'resource.attributes.secret' }, FIELDS), PlanFilterError, 'an unmapped field is refused')
  t.throws(() => toSqlWhere({ op: 'exists', field: 'resource.id' }, { 'resource.id': 'id; DROP TABLE x' }), PlanFilterError, 'a column is an identifier')
  const hostile = toSqlWhere({ op: 'eq', field: 'resource.id', value: "x' OR '1'='1" }, FIELDS)
  t.same(hostile, { sql: '(id IS NOT NULL AND id = ?)', params: ["x' OR '1'='1"] }, 'values only travel as parameters')
})

t.test('the ? dialect passes booleans as 1 and 0, as SQLite stores them and as its drivers can bind them', async (t) => {
  const flags: PlanFilter = {
    op: 'and',
    args: [
      { op: 'eq', field: 'resource.attributes.public', value: true },
      { op: 'ne', field: 'resource.attributes.archived', value: false },
      { op: 'in', field: 'resource.attributes.public', values: [true, 'yes'] },
    ],
  }
  const fields = { ...FIELDS, 'resource.attributes.public': 'public', 'resource.attributes.archived': 'archived' }
  const sqlite = toSqlWhere(flags, fields, { dialect: 'sqlite' })
  t.same(sqlite.params, [1, 0, 1, 'yes'])
  t.ok(sqlite.params.every((p) => typeof p !== 'boolean'), 'no JavaScript boolean reaches a ? parameter')
  t.same(toSqlWhere(flags, fields, { dialect: 'postgres' }).params, [true, false, true, 'yes'], 'PostgreSQL keeps its boolean type')
})
