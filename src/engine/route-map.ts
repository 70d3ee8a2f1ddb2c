import type { Sensitivity } from './types.js'

/**
 * The forward-auth route map: which policy request a gateway's original method and path stand for.
 * routes.yaml is read into one by `src/engine/policy/files/routes.ts`.
 */

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

export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
export const PARAM = /^:([A-Za-z_][A-Za-z0-9_]*)$/

/** One route of routes.yaml, ready to match. */
export interface CompiledRoute {
  /** Undefined: every method. */
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
export function segmentProblem(segment: string): string | undefined {
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

/** The map of `routes`, tried in order. */
export function createRouteMap(unmapped: RouteMap['unmapped'], routes: readonly CompiledRoute[]): RouteMap {
  // Each method's routes in the order they are tried. HEAD is answered like GET unless a route names HEAD itself.
  const byMethod = new Map<string, CompiledRoute[]>()
  for (const method of METHODS) byMethod.set(method, routes.filter((r) => r.methods === undefined || r.methods.has(method)))
  const head = routes.filter((r) => r.methods?.has('HEAD') === true)
  byMethod.set('HEAD', [...head, ...byMethod.get('GET')!.filter((r) => !head.includes(r))])
  return {
    unmapped,
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
