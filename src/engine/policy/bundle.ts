import type { PolicyEvaluator } from './evaluator.js'
import { createEvaluator } from './evaluator-factory.js'
import { parseModelFile, parsePolicyFile } from './policy-files.js'
import { IDENTITY_FILE, MODEL_FILE, POLICY_FILE, readPolicySnapshot, REQUEST_FILE, RESPONSE_FILE, RISK_FILE, ROUTES_FILE, type PolicySnapshot } from './policy-snapshot.js'
import { parseIdentityPolicy, DEFAULT_IDENTITY_POLICY, type IdentityPolicy } from './files/identity.js'
import { parseRequestMapping } from './files/request.js'
import { parseResponsePolicy, DEFAULT_RESPONSE_POLICY, type ResponsePolicy } from './files/response.js'
import { parseRiskPolicy, DEFAULT_RISK_POLICY, type RiskPolicy } from './files/risk.js'
import { parseRouteMap } from './files/routes.js'
import { sensitiveGrantRoles as sensitiveGrantRolesOf } from './grant-sensitivity.js'
import { createPlanner, type Planner } from '../plan/partial.js'
import { EMPTY_ROUTE_MAP, type RouteMap } from '../route-map.js'

/** Everything loaded from one policy directory, swapped in as a unit on reload. */
export interface PolicyBundle {
  /** Hash of the loaded files' names and contents. */
  version: string
  dir: string
  evaluator: PolicyEvaluator
  /** Answers "which resources of a type may this subject act on?" (POST /plan); absent on bundles not loaded from files. */
  planner?: Planner
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

/** Loads and validates every policy file in `dir`; throws a PolicyFileError naming file and line. */
export async function loadPolicyBundle(dir: string): Promise<PolicyBundle> {
  return buildPolicyBundle(await readPolicySnapshot(dir))
}

/** Validates the files of one snapshot into a bundle; throws a PolicyFileError naming file and line. */
export async function buildPolicyBundle(snapshot: PolicySnapshot): Promise<PolicyBundle> {
  const { dir, files } = snapshot
  // request.yaml, when present, says which request value each of the model's request fields receives.
  const requestText = files.get(REQUEST_FILE)
  const request = requestText === undefined ? undefined : parseRequestMapping(requestText, REQUEST_FILE)
  const model = parseModelFile(files.get(MODEL_FILE)!, MODEL_FILE, request)
  const lines = parsePolicyFile(files.get(POLICY_FILE)!, model, POLICY_FILE)
  const evaluator = await createEvaluator(model, lines, POLICY_FILE)
  const routesText = files.get(ROUTES_FILE)
  const riskText = files.get(RISK_FILE)
  const identityText = files.get(IDENTITY_FILE)
  const responseText = files.get(RESPONSE_FILE)
  const routes = routesText === undefined ? EMPTY_ROUTE_MAP : parseRouteMap(routesText, ROUTES_FILE)
  const risk = riskText === undefined ? DEFAULT_RISK_POLICY : parseRiskPolicy(riskText, RISK_FILE)
  const identity = identityText === undefined ? DEFAULT_IDENTITY_POLICY : parseIdentityPolicy(identityText, IDENTITY_FILE)
  const response = responseText === undefined ? DEFAULT_RESPONSE_POLICY : parseResponsePolicy(responseText, RESPONSE_FILE)
  const sensitiveGrantRoles = sensitiveGrantRolesOf(model, lines, identity)
  const planner = createPlanner(model, lines, POLICY_FILE)
  return { version: snapshot.version, dir, evaluator, planner, routes, risk, identity, sensitiveGrantRoles, response }
}
