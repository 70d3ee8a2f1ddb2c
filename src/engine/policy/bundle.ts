import { createHash } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { PolicyEvaluator } from './evaluator.js'
import { createEvaluator } from './evaluator-factory.js'
import { PolicyFileError, parseModelFile, parsePolicyFile } from './policy-files.js'
import { EMPTY_ROUTE_MAP, parseRouteMap, type RouteMap } from '../routes/route-map.js'
import { DEFAULT_RISK_POLICY, parseRiskPolicy, type RiskPolicy } from '../risk/risk-policy.js'
import { DEFAULT_IDENTITY_POLICY, parseIdentityPolicy, type IdentityPolicy } from '../../identity/identity-policy.js'
import { sensitiveGrantRoles as sensitiveGrantRolesOf } from '../../identity/grant-sensitivity.js'
import { DEFAULT_RESPONSE_POLICY, parseResponsePolicy, type ResponsePolicy } from '../../response/response-policy.js'

export const MODEL_FILE = 'model.conf'
export const POLICY_FILE = 'policy.csv'
export const ROUTES_FILE = 'routes.yaml'
export const RISK_FILE = 'risk.yaml'
export const IDENTITY_FILE = 'identity.yaml'
export const RESPONSE_FILE = 'response.yaml'

/** Everything loaded from one policy directory, swapped in as a unit on reload. */
export interface PolicyBundle {
  /** Hash of the loaded files' names and contents. */
  version: string
  dir: string
  evaluator: PolicyEvaluator
  /** Gateway route map for forward-auth; empty (everything unmapped) when routes.yaml is absent. */
  routes: RouteMap
  /** Risk weights, thresholds and step-up levels; the reference defaults when risk.yaml is absent. */
  risk: RiskPolicy
  /** Session time-outs and grant rules; defaults when identity.yaml is absent. */
  identity: IdentityPolicy
  /** Roles a grant of which waits for approval, from identity.yaml's lists applied to this policy. */
  sensitiveGrantRoles: ReadonlySet<string>
  /** Detection rules and response playbooks; the reference rules when response.yaml is absent. */
  response: ResponsePolicy
}

async function readOptional(dir: string, name: string): Promise<string | undefined> {
  try {
    return await readFile(join(dir, name), 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    throw new PolicyFileError(name, undefined, `cannot be read (${code ?? 'error'})`)
  }
}

async function readRequired(dir: string, name: string): Promise<string> {
  try {
    return await readFile(join(dir, name), 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new PolicyFileError(name, undefined, code === 'ENOENT' ? `missing from ${dir}` : `cannot be read (${code ?? 'error'})`)
  }
}

export function hashFiles(files: ReadonlyMap<string, string>): string {
  const hash = createHash('sha256')
  for (const name of [...files.keys()].sort()) {
    hash.update(name).update('\u0000').update(files.get(name)!).update('\u0000')
  }
  return hash.digest('hex').slice(0, 16)
}

/** Loads and validates every policy file in `dir`; throws a PolicyFileError naming file and line. */
export async function loadPolicyBundle(dir: string): Promise<PolicyBundle> {
  try {
    await readdir(dir)
  } catch {
    throw new PolicyFileError(dir, undefined, 'policy directory cannot be read')
  }
  const files = new Map<string, string>()
  files.set(MODEL_FILE, await readRequired(dir, MODEL_FILE))
  files.set(POLICY_FILE, await readRequired(dir, POLICY_FILE))

  const routesText = await readOptional(dir, ROUTES_FILE)
  if (routesText !== undefined) files.set(ROUTES_FILE, routesText)
  const riskText = await readOptional(dir, RISK_FILE)
  if (riskText !== undefined) files.set(RISK_FILE, riskText)
  const identityText = await readOptional(dir, IDENTITY_FILE)
  if (identityText !== undefined) files.set(IDENTITY_FILE, identityText)
  const responseText = await readOptional(dir, RESPONSE_FILE)
  if (responseText !== undefined) files.set(RESPONSE_FILE, responseText)

  const model = parseModelFile(files.get(MODEL_FILE)!, MODEL_FILE)
  const lines = parsePolicyFile(files.get(POLICY_FILE)!, model, POLICY_FILE)
  const evaluator = await createEvaluator(model, lines, POLICY_FILE)
  const routes = routesText === undefined ? EMPTY_ROUTE_MAP : parseRouteMap(routesText, ROUTES_FILE)
  const risk = riskText === undefined ? DEFAULT_RISK_POLICY : parseRiskPolicy(riskText, RISK_FILE)
  const identity = identityText === undefined ? DEFAULT_IDENTITY_POLICY : parseIdentityPolicy(identityText, IDENTITY_FILE)
  const response = responseText === undefined ? DEFAULT_RESPONSE_POLICY : parseResponsePolicy(responseText, RESPONSE_FILE)
  const sensitiveGrantRoles = sensitiveGrantRolesOf(model, lines, identity)
  return { version: hashFiles(files), dir, evaluator, routes, risk, identity, sensitiveGrantRoles, response }
}
