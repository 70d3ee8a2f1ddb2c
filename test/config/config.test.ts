import t from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError, VARIABLES, loadConfig } from '../../src/config/config.js'
import { ROOT } from '../helpers/build.js'

t.test('defaults need no environment at all', async (t) => {
  const config = loadConfig({})
  t.match(config, { port: 8080, host: '127.0.0.1', policyDir: './policies', logLevel: 'info', defaultTenant: 'default', bodyLimit: 1048576 })
  t.equal(config.redisUrl, undefined)
})

t.test('values are parsed and validated, naming the variable', async (t) => {
  t.equal(loadConfig({ PORT: '9000' }).port, 9000)
  for (const [env, pattern] of [
    [{ PORT: 'eighty' }, /^PORT: must be an integer/],
    [{ PORT: '70000' }, /^PORT: must be between 0 and 65535/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: must be one of/],
    [{ PDP_BODY_LIMIT: '10' }, /^PDP_BODY_LIMIT: must be between/],
    [{ REDIS_URL: 'not a url' }, /^REDIS_URL: must be a URL/],
    [{ HOST: '   ' }, /^HOST: must not be empty/],
    [{ GEODATADIR: 'data/geoip' }, /^GEODATADIR: must be an absolute path, got "data\/geoip"$/],
  ] as const) {
    t.throws(() => loadConfig(env), ConfigError)
    t.throws(() => loadConfig(env), { message: pattern })
  }
})

t.test('the README lists every variable with its default', async (t) => {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  for (const spec of Object.values(VARIABLES)) {
    t.match(readme, `\`${spec.name}\``, `${spec.name} is documented`)
    if (spec.default !== undefined) t.match(readme, `\`${spec.default}\``, `${spec.name} default is documented`)
  }
})
