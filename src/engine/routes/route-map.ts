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
  /** The first route in file order that matches; undefined when none does. */
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

/**
 * Splits a request path into decoded segments. Each segment is decoded on its own, so an encoded
 * slash never creates a segment; dot segments are refused because an upstream that normalises
 * them would serve a different path than the one the policy saw.
 */
export function pathSegments(path: string): string[] {
  const bare = path.split(/[?#]/, 1)[0] ?? ''
  if (!bare.startsWith('/')) throw new UnsafePathError('path must start with /')
  const segments = bare.slice(1).split('/')
  return segments.map((raw) => {
    let segment: string
    try {
      segment = decodeURIComponent(raw)
    } catch {
      throw new UnsafePathError('path has an invalid percent-escape')
    }
    if (segment === '.' || segment === '..') throw new UnsafePathError('path has a dot segment')
    if (segment.includes('\u0000')) throw new UnsafePathError('path has a NUL byte')
    return segment
  })
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

function matchRoute(route: CompiledRoute, method: string, segments: readonly string[]): Record<string, string> | undefined {
  if (route.methods && !route.methods.has(method)) return undefined
  if (route.rest ? segments.length < route.segments.length : segments.length !== route.segments.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < route.segments.length; i++) {
    const want = route.segments[i]!
    const got = segments[i]!
    if ('literal' in want) {
      if (want.literal !== got) return undefined
    } else {
      if (got === '') return undefined
      params[want.param] = got
    }
  }
  return params
}

export const EMPTY_ROUTE_MAP: RouteMap = { unmapped: 'deny', size: 0, match: () => undefined }

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
  return {
    unmapped: unmapped as RouteMap['unmapped'],
    size: routes.length,
    match(method, path) {
      const segments = pathSegments(path)
      const upper = method.toUpperCase()
      for (const route of routes) {
        const params = matchRoute(route, upper, segments)
        if (!params) continue
        const target: RouteTarget = { resourceType: route.resourceType, action: route.action, source: route.source }
        if (route.resourceId !== undefined) {
          const param = PARAM.exec(route.resourceId)
          target.resourceId = param ? params[param[1]!] : route.resourceId
        }
        if (route.sensitivity) target.sensitivity = route.sensitivity
        return target
      }
      return undefined
    },
  }
}
