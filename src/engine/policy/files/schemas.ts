import type { TSchema } from 'typebox'
import { IDENTITY_FILE, REQUEST_FILE, RESPONSE_FILE, RISK_FILE, ROUTES_FILE } from '../policy-snapshot.js'
import { IdentityFileSchema } from './identity.js'
import { RequestFileSchema } from './request.js'
import { ResponseFileSchema } from './response.js'
import { RiskFileSchema } from './risk.js'
import { RoutesFileSchema } from './routes.js'

/** The schema of each YAML file of the policy directory, by file name. */
export const POLICY_FILE_SCHEMAS: Readonly<Record<string, TSchema>> = {
  [RISK_FILE]: RiskFileSchema,
  [RESPONSE_FILE]: ResponseFileSchema,
  [IDENTITY_FILE]: IdentityFileSchema,
  [ROUTES_FILE]: RoutesFileSchema,
  [REQUEST_FILE]: RequestFileSchema,
}

/** Where the published JSON Schemas live, relative to a policy directory; the loader reads only policy file names, so never these. */
export const SCHEMA_DIR = 'schemas'

/** `risk.yaml` → `schemas/risk.schema.json`, relative to the policy directory. */
export function schemaPathOf(file: string): string {
  return `${SCHEMA_DIR}/${file.replace(/\.yaml$/, '')}.schema.json`
}

/** The JSON Schema published for a policy file, as written to disk: what editors read through `$schema`. */
export function jsonSchemaText(file: string): string {
  const schema = POLICY_FILE_SCHEMAS[file]
  if (!schema) throw new Error(`no schema for ${file}`)
  return `${JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', ...schema }, null, 2)}\n`
}
