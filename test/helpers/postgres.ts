import type { Test } from 'tap'
import pg from 'pg'
import { deadline } from './deadline.js'

/**
 * A connection to the PostgreSQL the plans' SQL runs in (127.0.0.1:5432, database test, or PGHOST/PGDATABASE/PGUSER),
 * closed at the test's end. Without a server the caller skips its SQL half and says so, as the Redis tests do; under
 * CI (which runs beside one) that is a failure instead.
 */
export async function postgres(t: Test): Promise<pg.Client | undefined> {
  const client = new pg.Client({ host: process.env.PGHOST ?? '127.0.0.1', port: 5432, user: process.env.PGUSER ?? 'postgres', database: process.env.PGDATABASE ?? 'test', connectionTimeoutMillis: deadline(10_000) })
  try {
    await client.connect()
  } catch (err) {
    const why = `no PostgreSQL to run the plans' SQL in (${(err as Error).message})`
    if (process.env.CI === 'true') t.fail(why)
    else t.comment(`${why}: the SQL half of this test is skipped`)
    return undefined
  }
  t.teardown(() => client.end())
  return client
}
