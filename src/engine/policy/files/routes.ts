import { Type, type Static } from 'typebox'
import { SENSITIVITIES } from '../../types.js'
import { createRouteMap, METHODS, PARAM, segmentProblem, type CompiledRoute, type RouteMap } from '../../route-map.js'
import { readYamlDocument, type YamlDocument, type YamlPath } from '../yaml-reader.js'

const name = Type.String({ pattern: '\\S', patternErrorMessage: 'must not be blank' })
const method = Type.Enum([...METHODS, ...METHODS.map((m) => m.toLowerCase())], { errorMessage: `must be one of ${METHODS.join(', ')} (upper or lower case)` })

const RouteSchema = Type.Object(
  {
    method: Type.Optional(
      Type.Union([method, Type.Literal('*'), Type.Array(method, { minItems: 1 })], {
        default: '*',
        errorMessage: `must be a method (${METHODS.join(', ')}), a list of them, or "*" for any`,
      }),
    ),
    path: Type.String({ pattern: '^/', patternErrorMessage: 'must start with /' }),
    resource: Type.Object({ type: name, id: Type.Optional(Type.Union([name, Type.Integer()])) }, { additionalProperties: false }),
    action: name,
    sensitivity: Type.Optional(Type.Enum(SENSITIVITIES)),
  },
  { additionalProperties: false },
)

/** routes.yaml as written. */
export const RoutesFileSchema = Type.Object(
  {
    unmapped: Type.Optional(Type.Enum(['deny', 'allow'], { default: 'deny' })),
    routes: Type.Optional(Type.Array(RouteSchema, { default: [] })),
  },
  { additionalProperties: false, title: 'routes.yaml', description: 'Forward-auth route map of the zt-pdp policy directory: gateway requests to policy requests.' },
)

function compileRoute(doc: YamlDocument, route: Static<typeof RouteSchema>, index: number): CompiledRoute {
  const at: YamlPath = ['routes', index]
  const written = route.method ?? '*'
  const methods = written === '*' ? undefined : new Set((Array.isArray(written) ? written : [written]).map((m) => m.toUpperCase()))
  const pattern = route.path.trim()
  const fail = (problem: string): never => doc.fail([...at, 'path'], problem)
  const parts = pattern.slice(1).split('/')
  const rest = parts[parts.length - 1] === '*'
  if (rest) parts.pop()
  const params = new Set<string>()
  const segments = parts.map((part) => {
    if (part.includes('*')) fail('"*" is only allowed as the last segment')
    const param = PARAM.exec(part)
    if (param) {
      if (params.has(param[1]!)) fail(`parameter :${param[1]} appears twice`)
      params.add(param[1]!)
      return { param: param[1]! }
    }
    if (part.startsWith(':')) fail(`"${part}" is not a valid parameter name`)
    // Requests are matched segment by segment after decoding; a literal no decoded request segment can equal is a mistake.
    if (part === '' && pattern !== '/') fail('path has an empty segment (a trailing slash is ignored in requests, so leave it out)')
    if (part !== '' && segmentProblem(part)) fail(`"${part}" can never match a request segment (${segmentProblem(part)})`)
    if (/[^\x21-\x7e]/.test(part)) fail(`"${part}" can never match: requests are plain ASCII`)
    return { literal: part }
  })
  const compiled: CompiledRoute = {
    methods,
    segments,
    rest,
    resourceType: route.resource.type.trim(),
    action: route.action.trim(),
    source: `${doc.file}:${doc.lineOf(at) ?? '?'}`,
  }
  if (route.resource.id !== undefined) {
    const id = String(route.resource.id).trim()
    const param = PARAM.exec(id)
    if (param && !params.has(param[1]!)) doc.fail([...at, 'resource', 'id'], `:${param[1]} is not a parameter of the path`)
    compiled.resourceId = id
  }
  if (route.sensitivity !== undefined) compiled.sensitivity = route.sensitivity
  return compiled
}

/** Parses routes.yaml; every problem is a PolicyFileError naming file and line. */
export function parseRouteMap(text: string, file = 'routes.yaml'): RouteMap {
  const doc = readYamlDocument(RoutesFileSchema, text, file)
  return createRouteMap(doc.value.unmapped ?? 'deny', (doc.value.routes ?? []).map((route, i) => compileRoute(doc, route, i)))
}
