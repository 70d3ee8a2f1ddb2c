/**
 * The request bodies the benchmark sends: many subjects, each with a home address from a small set of
 * public IPs, a managed laptop and sometimes an unmanaged phone, a session, and a mix of actions that the
 * policy allows, denies or (through the risk engine) steps up. Built once, up front, as JSON strings, so
 * the load generator only picks the next one.
 */
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { seededRandom, teamName, type GeneratedPolicy } from './generate-policy.js'

/** Public addresses in five countries (geoip-lite locates each); a subject always asks from its home one, so no impossible travel. */
export const PUBLIC_IPS = ['81.2.69.142', '212.58.244.20', '62.210.16.6', '5.9.0.1', '185.60.216.35', '93.184.216.34', '103.86.96.100'] as const

const TRUSTED_DEVICE = { managed: true, encrypted: true, osUpToDate: true }
// An unmanaged, unencrypted, outdated phone: device trust 20, so whatever the policy allows from it is a step-up.
const UNMANAGED_DEVICE = { managed: false, encrypted: false, osUpToDate: false }

interface Person {
  id: string
  tenant: string
  team: string
  /** Roles the caller asserts in subject.roles (the example workload); empty when policy.csv assigns them. */
  roles: string[]
  ip: string
  /** Seconds before the run started at which the person signed in. */
  signedInAgo: number
  hasPhone: boolean
}

interface Ask {
  action: string
  resource: { type: string; id?: string; attributes?: Record<string, unknown> }
}

export interface Workload {
  bodies: string[]
  /** Forward-auth: GET requests with headers instead of bodies (the same count, by index). */
  requests?: { method: 'GET'; path: string; headers: Record<string, string> }[]
  /** For the token scenario: the token each body carries, by index (to simulate the verifier's cache). */
  tokenOf?: Int32Array
  /** What the bodies are, in a line. */
  description: string
}

export interface WorkloadOptions {
  /** Distinct bodies; the load generator cycles through them. */
  bodies?: number
  seed?: number
  /** Epoch ms the sessions' authentication times are relative to. */
  nowMs?: number
}

type Chooser = <T>(values: readonly T[]) => T

function picker(random: () => number): Chooser {
  return (values) => values[Math.floor(random() * values.length)]!
}

/** Weighted choice among named kinds of request. */
function weighted<K extends string>(random: () => number, weights: Record<K, number>): K {
  const entries = Object.entries(weights) as [K, number][]
  let draw = random() * entries.reduce((sum, [, w]) => sum + w, 0)
  for (const [kind, w] of entries) {
    draw -= w
    if (draw < 0) return kind
  }
  return entries[entries.length - 1]![0]
}

function people(count: number, random: () => number, makeRole: (i: number) => Pick<Person, 'id' | 'tenant' | 'team' | 'roles'>): Person[] {
  const pick = picker(random)
  return Array.from({ length: count }, (_, i) => ({
    ...makeRole(i),
    ip: pick(PUBLIC_IPS),
    signedInAgo: 60 + Math.floor(random() * 1800),
    hasPhone: random() < 0.3,
  }))
}

function context(person: Person, onPhone: boolean, nowMs: number) {
  return {
    ip: person.ip,
    device: onPhone ? { id: `${person.id}-phone`, ...UNMANAGED_DEVICE } : { id: `${person.id}-laptop`, ...TRUSTED_DEVICE },
    session: {
      id: `s-${person.id}-${onPhone ? 'phone' : 'laptop'}`,
      authTime: Math.floor(nowMs / 1000) - person.signedInAgo,
      amr: onPhone ? ['pwd'] : ['pwd', 'otp'],
    },
  }
}

/** A question about the example policy (policies/policy.csv): documents, the user directory, system settings. */
function exampleAsk(person: Person, others: readonly Person[], random: () => number): Ask {
  const pick = picker(random)
  const doc = (owner: string, team: string) => ({ type: 'documents', id: `doc-${owner}-${Math.floor(random() * 5)}`, attributes: { owner, team } })
  const other = pick(others)
  switch (weighted(random, { readOwn: 25, updateOwn: 10, deleteOwn: 5, create: 10, readTeam: 20, readUsers: 10, readOther: 10, updateConfig: 5, readLogs: 5 })) {
    case 'readOwn':
      return { action: 'read', resource: doc(person.id, person.team) }
    case 'updateOwn':
      return { action: 'update', resource: doc(person.id, person.team) }
    case 'deleteOwn':
      return { action: 'delete', resource: doc(person.id, person.team) }
    case 'create':
      return { action: 'create', resource: { type: 'documents' } }
    case 'readTeam':
      return { action: 'read', resource: doc(other.id, person.team) }
    case 'readUsers':
      return { action: 'read', resource: { type: 'users', id: other.id } }
    case 'readOther':
      return { action: 'read', resource: doc(other.id, other.team === person.team ? 'team-elsewhere' : other.team) }
    case 'updateConfig':
      return { action: 'update', resource: { type: 'system.config', id: 'retention' } }
    case 'readLogs':
      return { action: 'read', resource: { type: 'system.logs', id: 'audit' } }
  }
}

function exampleRole(random: () => number): string {
  const draw = random()
  return draw < 0.7 ? 'employee' : draw < 0.95 ? 'manager' : 'admin'
}

function examplePeople(count: number, random: () => number): Person[] {
  return people(count, random, (i) => ({
    id: `user-${String(i).padStart(5, '0')}`,
    tenant: i % 2 === 0 ? 'acme' : 'globex',
    team: teamName(Math.floor(random() * 40)),
    roles: [exampleRole(random)],
  }))
}

/**
 * Bodies for the bundled example policy: `subjects` callers asserting one of its three roles. There are at least
 * as many bodies as subjects and the first ones name every subject once, so a cycle through them asks for all.
 */
export function exampleWorkload(subjects: number, options: WorkloadOptions = {}): Workload {
  const random = seededRandom(options.seed ?? 11)
  const nowMs = options.nowMs ?? Date.now()
  const crowd = examplePeople(subjects, random)
  const pick = picker(random)
  const bodies = Array.from({ length: Math.max(options.bodies ?? 20_000, subjects) }, (_, i) => {
    const person = i < crowd.length ? crowd[i]! : pick(crowd)
    const onPhone = person.hasPhone && random() < 0.5
    const ask = exampleAsk(person, crowd, random)
    return JSON.stringify({
      subject: { id: person.id, tenant: person.tenant, roles: person.roles, attributes: { team: person.team } },
      ...ask,
      context: context(person, onPhone, nowMs),
    })
  })
  return { bodies, description: `${subjects} distinct subjects asserting example roles, ${bodies.length} distinct bodies, ${PUBLIC_IPS.length} public IPs` }
}

/** Resource attributes that satisfy (or, for `restricted`, trip the deny row of) a generated condition. */
function attributesFor(condition: string, person: Person, random: () => number): Record<string, unknown> {
  switch (condition) {
    case 'team':
      return { team: person.team }
    case 'owner':
      return { owner: person.id }
    default:
      return random() < 0.1 ? { classification: 'restricted' } : { classification: 'internal' }
  }
}

/** Bodies for a generated policy: its subjects (roles come from its `g` lines), mostly asking for what one of their roles grants. */
export function generatedWorkload(policy: GeneratedPolicy, options: WorkloadOptions = {}): Workload {
  const random = seededRandom(options.seed ?? 13)
  const nowMs = options.nowMs ?? Date.now()
  const pick = picker(random)
  const crowd = people(policy.subjects.length, random, (i) => {
    const s = policy.subjects[i]!
    return { id: s.id, tenant: s.tenant, team: s.team, roles: [] }
  })
  const bodies = Array.from({ length: options.bodies ?? 20_000 }, () => {
    const index = Math.floor(random() * crowd.length)
    const person = crowd[index]!
    let ask: Ask
    switch (weighted(random, { granted: 75, example: 10, ungranted: 15 })) {
      case 'granted': {
        const grant = pick(policy.permissions.get(pick(policy.subjects[index]!.roles))!)
        ask = { action: grant.action, resource: { type: grant.resourceType, id: `r-${Math.floor(random() * 1000)}`, attributes: attributesFor(grant.condition, person, random) } }
        break
      }
      case 'example':
        ask = exampleAsk(person, crowd, random)
        break
      case 'ungranted':
        ask = { action: pick(policy.actions), resource: { type: pick(policy.resourceTypes), id: `r-${Math.floor(random() * 1000)}` } }
        break
    }
    const onPhone = person.hasPhone && random() < 0.5
    return JSON.stringify({ subject: { id: person.id, tenant: person.tenant, attributes: { team: person.team } }, ...ask, context: context(person, onPhone, nowMs) })
  })
  return {
    bodies,
    description: `${policy.subjects.length} subjects of the generated policy (roles from its g lines), ${bodies.length} distinct bodies: 75% a permission one of their roles grants, 10% example rows, 15% ungranted`,
  }
}

export interface TokenWorkload extends Workload {
  /** PDP_ISSUER, PDP_AUDIENCE, PDP_JWKS_FILE, PDP_JWT_MAX_LIFETIME_S for the server. */
  env: Record<string, string>
  cleanup(): Promise<void>
}

const ISSUER = 'https://idp.bench.example'
const AUDIENCE = 'pdp'

interface Issued {
  token: string
  person: Person
  onPhone: boolean
}

/** `tokens` distinct RS256 tokens for people of the example crowd (one per subject and device sign-in), and the JWKS to verify them. */
async function issueTokens(crowd: Person[], tokens: number, lifetimeSec: number, nowMs: number): Promise<{ issued: Issued[]; env: Record<string, string>; cleanup(): Promise<void> }> {
  const { publicKey, privateKey } = await generateKeyPair('RS256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'RS256', use: 'sig' }
  const dir = await mkdtemp(join(tmpdir(), 'pdp-bench-jwks-'))
  const jwksFile = join(dir, 'jwks.json')
  await writeFile(jwksFile, JSON.stringify({ keys: [jwk] }))

  const iat = Math.floor(nowMs / 1000)
  const issued: Issued[] = []
  for (let t = 0; t < tokens; t++) {
    const person = crowd[t % crowd.length]!
    const onPhone = person.hasPhone && t % 2 === 1
    const session = context(person, onPhone, nowMs).session
    const token = await new SignJWT({ roles: person.roles, tenant: person.tenant, amr: session.amr, auth_time: session.authTime, sid: session.id, jti: `bench-${t}` })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(person.id)
      .setIssuedAt(iat)
      .setExpirationTime(iat + lifetimeSec)
      .sign(privateKey)
    issued.push({ token, person, onPhone })
  }
  return {
    issued,
    env: { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: jwksFile, PDP_JWT_MAX_LIFETIME_S: String(lifetimeSec) },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

/**
 * Bodies carrying a JWT instead of a subject: `tokens` distinct RS256 tokens (one per subject and device
 * sign-in), each used by bodies i ≡ token (mod tokens), so cycling through the bodies cycles the tokens.
 */
export async function tokenWorkload(subjects: number, tokens: number, lifetimeSec: number, options: WorkloadOptions = {}): Promise<TokenWorkload> {
  const random = seededRandom(options.seed ?? 17)
  const nowMs = options.nowMs ?? Date.now()
  const crowd = examplePeople(subjects, random)
  const { issued, env, cleanup } = await issueTokens(crowd, tokens, lifetimeSec, nowMs)
  const count = Math.max(options.bodies ?? 20_000, tokens)
  const tokenOf = new Int32Array(count)
  const bodies = Array.from({ length: count }, (_, i) => {
    const { token, person, onPhone } = issued[i % tokens]!
    tokenOf[i] = i % tokens
    const { session: _session, ...rest } = context(person, onPhone, nowMs)
    return JSON.stringify({ token, ...exampleAsk(person, crowd, random), context: rest })
  })
  return {
    bodies,
    tokenOf,
    description: `${tokens} distinct RS256 tokens for ${Math.min(subjects, tokens)} subjects, cycled in order over ${count} bodies`,
    env,
    cleanup,
  }
}

/** The original request a gateway would forward for an ask, in policies/routes.yaml's terms. */
function forwardedRequest(ask: Ask): { method: string; uri: string } {
  const { type, id } = ask.resource
  const one = id === undefined ? '' : `/${encodeURIComponent(id)}`
  const method = { read: 'GET', create: 'POST', update: 'PUT', delete: 'DELETE' }[ask.action] ?? 'GET'
  switch (type) {
    case 'documents':
      return { method, uri: `/api/documents${ask.action === 'create' ? '' : one}` }
    case 'users':
      return { method, uri: `/api/users${one}` }
    case 'system.logs':
      return { method: 'GET', uri: '/api/system/logs/audit' }
    default:
      return { method: 'PUT', uri: '/api/system/config' }
  }
}

/**
 * Forward-auth requests (Traefik/Caddy dialect, GET /authz/forward): the example asks as the original requests
 * of policies/routes.yaml, each with one of `tokens` bearer tokens, cycled in order as in tokenWorkload.
 */
export async function forwardAuthWorkload(subjects: number, tokens: number, lifetimeSec: number, options: WorkloadOptions = {}): Promise<TokenWorkload> {
  const random = seededRandom(options.seed ?? 19)
  const nowMs = options.nowMs ?? Date.now()
  const crowd = examplePeople(subjects, random)
  const { issued, env, cleanup } = await issueTokens(crowd, tokens, lifetimeSec, nowMs)
  const count = Math.max(options.bodies ?? 20_000, tokens)
  const requests = Array.from({ length: count }, (_, i) => {
    const { token, person } = issued[i % tokens]!
    const original = forwardedRequest(exampleAsk(person, crowd, random))
    return {
      method: 'GET' as const,
      path: '/authz/forward',
      headers: {
        authorization: `Bearer ${token}`,
        'x-forwarded-method': original.method,
        'x-forwarded-uri': original.uri,
        'x-forwarded-for': person.ip,
      },
    }
  })
  return {
    bodies: requests.map((r) => `${r.headers['x-forwarded-method']} ${r.headers['x-forwarded-uri']}`),
    requests,
    description: `${tokens} distinct RS256 tokens for ${Math.min(subjects, tokens)} subjects as bearer tokens of forward-auth requests, cycled in order over ${count} requests`,
    env,
    cleanup,
  }
}
