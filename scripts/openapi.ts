import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config/config.js'
import { PACKAGE_ROOT } from '../src/package-info.js'

/** Regenerates openapi/openapi.json from the route schemas: `npm run openapi`. */
export async function generateOpenApi(): Promise<string> {
  const app = await buildApp({ config: loadConfig({ PDP_POLICY_DIR: join(PACKAGE_ROOT, 'policies') }), logger: false })
  await app.ready()
  const text = JSON.stringify(app.swagger(), null, 2) + '\n'
  await app.close()
  return text
}

if (import.meta.filename === process.argv[1]) {
  const file = join(PACKAGE_ROOT, 'openapi/openapi.json')
  await writeFile(file, await generateOpenApi())
  process.stdout.write(`wrote ${file}\n`)
}
