import t, { type Test } from 'tap'
import pg from 'pg'
import { toSqlWhere, type FieldMap } from '../../../src/client/plan-filter.js'
import { createPdp } from '../../../src/engine/pdp.js'
import { matchesFilter } from '../../../src/engine/plan/filter.js'
import { buildPolicyBundle, type PolicyBundle } from '../../../src/engine/policy/bundle.js'
import { MODEL_FILE, POLICY_FILE } from '../../../src/engine/policy/policy-snapshot.js'
import { PLAN_ACTIONS, PLAN_TYPES, random, randomPlanPolicy, randomPlanResources, randomPlanSubject, UNFILTERABLE_CONDITIONS, type PlanPolicy } from '../../helpers/casbin-oracle.js'
import { postgres } from '../../helpers/postgres.js'

/*
 * The plan's promise: filtering a set of resources with it gives exactly the resources that a decision, asked one
 * by one, allows. Checked for random policies (every effect, deny rules, role hierarchies, tenants, conditions
 * over the resource, Casbin's pattern functions on its id) and random resource sets; a plan the planner refuses must name a line that holds a construct a
 * filter cannot express. The plan is applied three ways: the in-memory predicate, and the SQL clause run in
 * PostgreSQL (127.0.0.1:5432, database test, or PGHOST/PGDATABASE) over a temporary table holding the same resources.
 * PDP_PLAN_SCENARIOS sets how many policies are tried.
 */

const SCENARIOS = Number(process.env.PDP_PLAN_SCENARIOS ?? 400)
const START = Date.parse('2026-03-01T00:00:00Z')

const COLUMNS: FieldMap = {
  'resource.id': 'id',
  'resource.attributes.owner': 'owner',
  'resource.attributes.team': 'team',
  'resource.attributes.level': 'level',
  'resource.attributes.status': 'status',
  'resource.attributes.public': 'public',
  'resource.attributes.archived': 'archived',
}

/** The database the SQL filters run in, with a temporary table (private to this connection, gone with it). */
async function database(t: Test): Promise<pg.Client | undefined> {
  const client = await postgres(t)
  await client?.query('CREATE TEMP TABLE plan_resources (scenario int, pos int, id text, owner text, team text, level numeric, status text, public boolean, archived boolean)')
  return client
}

async function sqlAllowed(client: pg.Client, scenario: number, resources: ReturnType<typeof randomPlanResources>, filter: Parameters<typeof toSqlWhere>[0]): Promise<string[]> {
  const names = ['owner', 'team', 'level', 'status', 'public', 'archived']
  for (const [pos, r] of resources.entries()) {
    await client.query('INSERT INTO plan_resources VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [scenario, pos, r.id, ...names.map((n) => r.attributes[n] ?? null)])
  }
  const where = toSqlWhere(filter, COLUMNS, { dialect: 'postgres', firstParameter: 2 })
  const rows = await client.query<{ id: string }>(`SELECT id FROM plan_resources WHERE scenario = $1 AND ${where.sql} ORDER BY pos`, [scenario, ...where.params])
  return rows.rows.map((r) => r.id)
}

async function bundleOf(policy: PlanPolicy, version: string): Promise<PolicyBundle> {
  const files = new Map([
    [MODEL_FILE, policy.model],
    [POLICY_FILE, policy.policy],
  ])
  return buildPolicyBundle({ dir: 'generated', files, version, stamp: '' })
}

t.test('a plan filters a resource set to exactly what decisions allow one by one', async (t) => {
  const client = await database(t)
  let conditional = 0
  let patterned = 0
  let refused = 0
  for (let seed = 1; seed <= SCENARIOS; seed++) {
    const next = random(seed)
    const policy = randomPlanPolicy(next)
    const bundle = await bundleOf(policy, `v${seed}`)
    const now = START + next(24) * 3_600_000
    const pdp = createPdp({ policy: { current: bundle }, now: () => now, defaultTenant: 'default' })
    const subject = randomPlanSubject(next)
    const type = PLAN_TYPES[next(PLAN_TYPES.length)]!
    const action = PLAN_ACTIONS[next(PLAN_ACTIONS.length)]!
    const resources = randomPlanResources(next, 16)
    const plan = await pdp.plan({ subject, action, resource: { type } })
    const context = `seed ${seed}\n${policy.model}\n${policy.policy}\n${JSON.stringify({ subject, type, action })}`
    if (plan.plan === 'unsupported') {
      refused++
      const lineNumber = Number(/^policy\.csv:(\d+)$/.exec(plan.unsupported?.rule ?? '')?.[1])
      const line = policy.policy.split('\n')[lineNumber - 1] ?? ''
      const construct = [...UNFILTERABLE_CONDITIONS].find(([condition]) => line.includes(condition))
      if (!construct || !plan.unsupported?.reason.includes(construct[1])) t.fail(`refused for the wrong line or reason: ${JSON.stringify(plan)}\n${context}`)
      continue
    }
    const allowed: string[] = []
    for (const resource of resources) {
      const decision = await pdp.decide({ subject, action, resource: { type, ...resource } })
      if (decision.decision === 'allow') allowed.push(resource.id)
    }
    const filter = plan.filter ?? plan.plan === 'always_allowed'
    if (typeof filter !== 'boolean') conditional++
    if (JSON.stringify(filter).includes('"op":"matches"')) patterned++
    const planned = resources.filter((r) => (typeof filter === 'boolean' ? filter : matchesFilter(filter, r))).map((r) => r.id)
    if (JSON.stringify(planned) !== JSON.stringify(allowed)) {
      t.fail(`plan and decisions differ\n${context}\nplan: ${JSON.stringify(plan)}\nplanned: ${planned}\nallowed: ${allowed}\n${JSON.stringify(resources)}`)
      return
    }
    if (typeof filter === 'boolean' || !client) continue
    const selected = await sqlAllowed(client, seed, resources, filter)
    if (JSON.stringify(selected) !== JSON.stringify(allowed)) {
      t.fail(`SQL and decisions differ\n${context}\nfilter: ${JSON.stringify(filter)}\nsql: ${JSON.stringify(toSqlWhere(filter, COLUMNS, { dialect: 'postgres' }))}\nselected: ${selected}\nallowed: ${allowed}`)
      return
    }
  }
  t.ok(conditional > SCENARIOS / 10, `conditional plans: ${conditional}`)
  t.ok(patterned > SCENARIOS / 20, `plans with keyMatch2-5, regexMatch or globMatch: ${patterned}`)
  t.ok(refused > 0, `refused plans: ${refused}`)
})
