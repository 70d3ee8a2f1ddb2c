import { SENSITIVITIES, type Sensitivity } from '../types.js'
import { parseYamlFile, type YamlFile, type YamlPath } from '../policy/yaml-file.js'

/** What a gateway's original request means to the policy. */
export interface RouteTarget {
  resourceType: string
  resourceId?: string
  action: string
  sensitivity?: Sensitivity
  /** The mapping's own line, for explanations. */
  source: string
}

export interface RouteMap {
  /** What an unmapped route gets. */
  unmapped: 'deny' | 'allow'
  /**
   * The first route in file order that matches (for HEAD, the first that lists HEAD, else GET's); undefined when
   * none does. Throws UnsafePathError for a path an upstream could read differently (see pathSegments).
   */
  match(method: string, path: string): RouteTarget | undefined
  readonly size: number
}

/** A path that cannot be mapped safely (dot segments, bad escapes): callers deny it. */
export class UnsafePathError extends Error {
  override name = 'UnsafePathError'
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/

interface CompiledRoute {
  methods: Set<string> | undefined
  segments: ({ literal: string } | { param: string })[]
  rest: boolean
  resourceType: string
  resourceId?: string
  action: string
  sensitivity?: Sensitivity
  source: string
}

/** Longer request targets are refused rather than matched: no mapped route needs them. */
export const MAX_TARGET_LENGTH = 4096

/** Why a decoded segment would not be the segment an upstream sees, or would change the path it serves. */
function segmentProblem(segment: string): string | undefined {
  if (segment === '.' || segment.startsWith('..')) return 'path has a dot segment'
  if (segment.includes('/') || segment.includes('\\')) return 'path has an encoded path separator'
  // Servlet containers and some frameworks cut ";params" off a segment, so the upstream would see another id.
  if (segment.includes(';')) return 'path has a matrix parameter (";")'
  if (/[\u0000-\u001f\u007f]/.test(segment)) return 'path has a control character'
  // An upstream that decodes once more would see something else than the policy did.
  if (/%[0-9A-Fa-f]{2}/.test(segment)) return 'path is percent-encoded twice'
  return undefined
}

/**
 * Splits a request target (path and query, as the client sent it) into segments, each decoded once on
 * its own. Anything an upstream might read differently from the route map is refused: dot segments
 * (also encoded or with a suffix such as "..;"), encoded separators, matrix parameters, empty
 * segments, double encoding, raw bytes outside visible ASCII and method overrides in the query.
 * One trailing slash is dropped: upstreams serve "/x/" as "/x" or not at all.
 */
export function pathSegments(target: string): string[] {
  if (target.length > MAX_TARGET_LENGTH) throw new UnsafePathError(`path is longer than ${MAX_TARGET_LENGTH} characters`)
  if (!/^[\x21-\x7e]*$/.test(target)) throw new UnsafePathError('path has characters outside visible ASCII')
  if (target.includes('#')) throw new UnsafePathError('path has a fragment')
  const q = target.indexOf('?')
  const path = q < 0 ? target : target.slice(0, q)
  if (q >= 0) checkQuery(target.slice(q + 1))
  if (!path.startsWith('/')) throw new UnsafePathError('path must start with /')
  if (path === '/') return ['']
  const raw = path.slice(1).split('/')
  if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop()
  return raw.map((part) => {
    if (part === '') throw new UnsafePathError('path has an empty segment ("//")')
    let segment: string
    try {
      segment = decodeURIComponent(part)
    } catch {
      throw new UnsafePathError('path has an invalid percent-escape')
    }
    const problem = segmentProblem(segment)
    if (problem) throw new UnsafePathError(problem)
    return segment
  })
}

/** Frameworks that honour "_method" in the query would run another method than the one decided. */
function checkQuery(query: string): void {
  for (const pair of query.split('&')) {
    const name = pair.split('=', 1)[0]!
    let decoded: string
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '))
    } catch {
      throw new UnsafePathError('query has an invalid percent-escape')
    }
    if (decoded.trim().toLowerCase() === '_method') throw new UnsafePathError('query overrides the method ("_method")')
  }
}

function str(yaml: YamlFile, value: unknown, path: YamlPath, what: string): string {
  if (typeof value !== 'string' || value.trim() === '') yaml.fail(path, `${what} must be a non-empty string`)
  return value.trim()
}

function compileRoute(yaml: YamlFile, raw: unknown, index: number): CompiledRoute {
  const at: YamlPath = ['routes', index]
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) yaml.fail(at, 'each route must be a mapping')
  const route = raw as Record<string, unknown>
  for (const key of Object.keys(route)) {
    if (!['method', 'path', 'resource', 'action', 'sensitivity'].includes(key)) yaml.fail([...at, key], `unknown key "${key}"`)
  }
  let methods: Set<string> | undefined
  const method = route.method ?? '*'
  const list = Array.isArray(method) ? method : [method]
  if (list.length === 0) yaml.fail([...at, 'method'], 'method list is empty')
  if (!(list.length === 1 && list[0] === '*')) {
    methods = new Set()
    for (const m of list) {
      const name = typeof m === 'string' ? m.toUpperCase() : ''
      if (!METHODS.includes(name)) yaml.fail([...at, 'method'], `method must be one of ${METHODS.join(', ')} or "*", got ${JSON.stringify(m)}`)
      methods.add(name)
    }
  }
  const pattern = str(yaml, route.path, [...at, 'path'], 'path')
  if (!pattern.startsWith('/')) yaml.fail([...at, 'path'], 'path must start with /')
  const parts = pattern.slice(1).split('/')
  const rest = parts[parts.length - 1] === '*'
  if (rest) parts.pop()
  const params = new Set<string>()
  const segments = parts.map((part) => {
    if (part.includes('*')) yaml.fail([...at, 'path'], '"*" is only allowed as the last segment')
    const param = PARAM.exec(part)
    if (param) {
      if (params.has(param[1]!)) yaml.fail([...at, 'path'], `parameter :${param[1]} appears twice`)
      params.add(param[1]!)
      return { param: param[1]! }
    }
    if (part.startsWith(':')) yaml.fail([...at, 'path'], `"${part}" is not a valid parameter name`)
    // Requests are matched segment by segment after decoding; a literal no decoded request segment can equal is a mistake.
    if (part === '' && pattern !== '/') yaml.fail([...at, 'path'], 'path has an empty segment (a trailing slash is ignored in requests, so leave it out)')
    if (part !== '' && segmentProblem(part)) yaml.fail([...at, 'path'], `"${part}" can never match a request segment (${segmentProblem(part)})`)
    if (/[^\x21-\x7e]/.test(part)) yaml.fail([...at, 'path'], `"${part}" can never match: requests are plain ASCII`)
    return { literal: part }
  })

  const resource = route.resource
  if (!resource || typeof resource !== 'object' || Array.isArray(resource)) yaml.fail([...at, 'resource'], 'resource must be a mapping with type (and optionally id)')
  const res = resource as Record<string, unknown>
  for (const key of Object.keys(res)) if (key !== 'type' && key !== 'id') yaml.fail([...at, 'resource', key], `unknown key "${key}"`)
  const compiled: CompiledRoute = {
    methods,
    segments,
    rest,
    resourceType: str(yaml, res.type, [...at, 'resource', 'type'], 'resource.type'),
    action: str(yaml, route.action, [...at, 'action'], 'action'),
    source: `${yaml.file}:${yaml.lineOf(at) ?? '?'}`,
  }
  if (res.id !== undefined) {
    const id = str(yaml, String(res.id), [...at, 'resource', 'id'], 'resource.id')
    const param = PARAM.exec(id)
    if (param && !params.has(param[1]!)) yaml.fail([...at, 'resource', 'id'], `:${param[1]} is not a parameter of the path`)
    compiled.resourceId = id
  }
  if (route.sensitivity !== undefined) {
    if (!(SENSITIVITIES as readonly unknown[]).includes(route.sensitivity)) {
      yaml.fail([...at, 'sensitivity'], `sensitivity must be one of ${SENSITIVITIES.join(', ')}`)
    }
    compiled.sensitivity = route.sensitivity as Sensitivity
  }
  return compiled
}

/** How a route compares with a request: its path parameters, or why not. */
function matchRoute(route: CompiledRoute, segments: readonly string[], ignoreCase: boolean): Record<string, string> | undefined {
  if (route.rest ? segments.length < route.segments.length : segments.length !== route.segments.length) return undefined
  const params: Record<string, string> = Object.create(null)
  for (let i = 0; i < route.segments.length; i++) {
    const want = route.segments[i]!
    const got = segments[i]!
    if ('literal' in want) {
      if (want.literal !== got && !(ignoreCase && want.literal.toLowerCase() === got.toLowerCase())) return undefined
    } else {
      if (got === '') return undefined
      params[want.param] = got
    }
  }
  return params
}

export const EMPTY_ROUTE_MAP: RouteMap = { unmapped: 'deny', size: 0, match: () => undefined }

function targetOf(route: CompiledRoute, params: Record<string, string>): RouteTarget {
  const target: RouteTarget = { resourceType: route.resourceType, action: route.action, source: route.source }
  if (route.resourceId !== undefined) {
    const param = PARAM.exec(route.resourceId)
    target.resourceId = param ? params[param[1]!] : route.resourceId
  }
  if (route.sensitivity) target.sensitivity = route.sensitivity
  return target
}

/** Parses routes.yaml; every problem is a PolicyFileError naming file and line. */
export function parseRouteMap(text: string, file = 'routes.yaml'): RouteMap {
  const yaml = parseYamlFile(text, file)
  const root = (yaml.value ?? {}) as Record<string, unknown>
  if (typeof root !== 'object' || Array.isArray(root)) yaml.fail([], 'the file must be a mapping with "routes"')
  for (const key of Object.keys(root)) if (key !== 'routes' && key !== 'unmapped') yaml.fail([key], `unknown key "${key}"`)
  const unmapped = root.unmapped ?? 'deny'
  if (unmapped !== 'deny' && unmapped !== 'allow') yaml.fail(['unmapped'], 'unmapped must be "deny" or "allow"')
  const list: unknown = root.routes ?? []
  if (!Array.isArray(list)) yaml.fail(['routes'], 'routes must be a list')
  const routes = (list as unknown[]).map((raw, i) => compileRoute(yaml, raw, i))
  // Each method's routes in the order they are tried. HEAD is answered like GET unless a route names HEAD itself.
  const byMethod = new Map<string, CompiledRoute[]>()
  for (const method of METHODS) byMethod.set(method, routes.filter((r) => r.methods === undefined || r.methods.has(method)))
  const head = routes.filter((r) => r.methods?.has('HEAD') === true)
  byMethod.set('HEAD', [...head, ...byMethod.get('GET')!.filter((r) => !head.includes(r))])
  return {
    unmapped: unmapped as RouteMap['unmapped'],
    size: routes.length,
    match(method, path) {
      const segments = pathSegments(path)
      const candidates = byMethod.get(method.toUpperCase()) ?? []
      for (const route of candidates) {
        const params = matchRoute(route, segments, false)
        if (params) return targetOf(route, params)
      }
      // An upstream that ignores case would serve a mapped route under a path the map does not know.
      if (candidates.some((route) => matchRoute(route, segments, true))) throw new UnsafePathError('path differs from a mapped route only in case')
      return undefined
    },
  }
}
