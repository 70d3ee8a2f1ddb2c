import type { PolicyQuery } from './evaluator.js'

/** One value of the PDP's request that a Casbin request field can receive. */
export interface RequestSource {
  /** How request.yaml names it: `subject.id`, `resource.attributes.owner`, `action`, ... */
  path: string
  get(query: PolicyQuery): unknown
  /** Always a string, so a matcher's `==` on it is a plain string comparison (what the indexed evaluator needs). */
  isString: boolean
}

const source = (path: string, get: (q: PolicyQuery) => unknown, isString = false): RequestSource => ({ path, get, isString })

const SOURCES: ReadonlyMap<string, RequestSource> = new Map(
  [
    source('subject', (q) => q.subject),
    source('subject.id', (q) => q.subject.id, true),
    source('subject.tenant', (q) => q.subject.tenant, true),
    source('subject.roles', (q) => q.subject.roles),
    source('subject.attributes', (q) => q.subject.attributes),
    source('domain', (q) => q.domain, true),
    source('resource', (q) => q.resource),
    source('resource.type', (q) => q.resource.type, true),
    source('resource.id', (q) => q.resource.id, true),
    source('resource.attributes', (q) => q.resource.attributes),
    source('action', (q) => q.action, true),
    source('env', (q) => q.env),
    source('env.time', (q) => q.env.time),
    source('env.hour', (q) => q.env.hour),
    source('env.weekday', (q) => q.env.weekday),
    source('env.ip', (q) => q.env.ip, true),
    // The original request of a forward-auth decision (what keyMatch models expect as r.obj); empty for /decide.
    source('http.path', (q) => q.http?.path ?? '', true),
    source('http.method', (q) => q.http?.method ?? '', true),
  ].map((s) => [s.path, s]),
)

/** The request values named by a fixed path (attributes come on top: `subject.attributes.<name>`, ...). */
export const REQUEST_VALUES: readonly string[] = [...SOURCES.keys()]

/** A named attribute of the subject or the resource. */
export const ATTRIBUTE = /^(subject|resource)\.attributes\.([A-Za-z_][\w-]*)$/
const NOT_DATA = new Set(['constructor', '__proto__', 'prototype'])

/** The request value a path names, or undefined when the PDP has no such value. */
export function requestSource(path: string): RequestSource | undefined {
  const known = SOURCES.get(path)
  if (known) return known
  const attribute = ATTRIBUTE.exec(path)
  if (!attribute || NOT_DATA.has(attribute[2]!)) return undefined
  const [, owner, name] = attribute as unknown as [string, 'subject' | 'resource', string]
  // Own properties only: an attribute never reaches the prototype chain.
  return source(path, (q) => {
    const attributes = q[owner].attributes
    return Object.hasOwn(attributes, name) ? attributes[name] : undefined
  })
}

/** Without request.yaml, the model's request fields are the PDP's own: the subject and resource as objects. */
export const PDP_REQUEST: ReadonlyMap<string, RequestSource> = new Map(
  Object.entries({ sub: 'subject', dom: 'domain', obj: 'resource', act: 'action', env: 'env' }).map(([field, path]) => [field, SOURCES.get(path)!]),
)

/** With request.yaml, a field it does not name receives what its name suggests to a Casbin user: strings. */
export const GUESSED_SOURCES: Readonly<Record<string, string>> = {
  sub: 'subject.id',
  subject: 'subject.id',
  user: 'subject.id',
  dom: 'domain',
  domain: 'domain',
  tenant: 'domain',
  obj: 'resource.id',
  object: 'resource.id',
  resource: 'resource.id',
  act: 'action',
  action: 'action',
  env: 'env',
  path: 'http.path',
  method: 'http.method',
}

/** What request.yaml declares: request field → request value, with the line of each entry. */
export interface DeclaredRequestMapping {
  file: string
  fields: ReadonlyMap<string, { source: RequestSource; line: number | undefined }>
}
