import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { Value } from 'typebox/value'
import type { DecisionInput } from '../engine/pdp.js'
import type { PolicyBundle } from '../engine/policy/bundle.js'
import { buildPolicyBundle } from '../engine/policy/bundle.js'
import { PolicyFileError } from '../engine/policy/policy-files.js'
import { hashFiles, POLICY_FILE_NAMES, readPolicySnapshot } from '../engine/policy/policy-snapshot.js'
import type { GeoLookup } from '../engine/risk/geo.js'
import { riskKeys } from '../engine/risk/keys.js'
import type { Clock } from '../engine/types.js'
import { PdpHttpError } from '../errors.js'
import { listSessions } from '../identity/sessions.js'
import { checkInput } from '../routes/decide.js'
import { checkBody } from '../schemas/body-guard.js'
import { DecideRequestSchema } from '../schemas/decide.js'
import { ErrorSchema, Id } from '../schemas/common.js'
import { requires } from '../schemas/security.js'
import { differences, Explainer } from './explain.js'
import { redaction } from '../audit/audit-log.js'
import { DecisionRing, type LiveFilter } from './ring.js'
import {
  DecisionLineSchema,
  DevicesResponseSchema,
  ExplainBodySchema,
  ExplainResponseSchema,
  LiveQuerySchema,
  PolicyFilesResponseSchema,
  StatsResponseSchema,
  WhatIfBodySchema,
  WhatIfResponseSchema,
} from './schemas.js'
import { StreamHub } from './stream.js'

export interface ExplorerRoutesOptions {
  now: Clock
  geo: GeoLookup
  defaultTenant: string
  storeFailure: 'closed' | 'open'
  redactPaths: readonly string[]
  ringSize: number
  streamMax: number
  heartbeatMs: number
  editMaxBytes: number
  statsMinutes: number
}

interface Chosen {
  request: Record<string, unknown>
  input: DecisionInput
  masked: string[]
  logged?: { decisionId: string; time: string; verdict: string; reasons: string[] }
}

/** A logged request (the line's redacted `input`) back into a /decide body; a line without a subject cannot be decided again. */
function fromLine(line: Record<string, unknown>, field: string): Chosen {
  if (line.type !== 'decision' || typeof line.decision_id !== 'string') throw new PdpHttpError('VALIDATION', `${field} is not a decision line (type "decision")`, field)
  const input = line.input as Record<string, unknown> | undefined
  const subject = input?.subject as { id?: unknown } | undefined
  if (!input || typeof subject?.id !== 'string' || typeof input.action !== 'string' || typeof input.resource !== 'object' || input.resource === null) {
    throw new PdpHttpError('VALIDATION', `${field}: the logged request has no subject (its token failed verification), so there is nothing to decide again`, field)
  }
  const request: Record<string, unknown> = { subject: input.subject, action: input.action, resource: input.resource }
  if (input.context !== undefined) request.context = input.context
  // A pasted line is anybody's text: the request in it gets every check a /decide body gets.
  const shape = checkBody(request)
  if (shape) throw new PdpHttpError('VALIDATION', `${field}: the logged request's ${shape.field} ${shape.message}`, field)
  const [invalid] = Value.Errors(DecideRequestSchema, request)
  if (invalid) throw new PdpHttpError('VALIDATION', `${field}: the logged request's ${invalid.instancePath || '/'} ${invalid.message}`, field)
  checkInput(request)
  return {
    request,
    input: request as unknown as DecisionInput,
    masked: Array.isArray(line.masked) ? line.masked.filter((m): m is string => typeof m === 'string') : [],
    logged: { decisionId: line.decision_id, time: String(line.time), verdict: String(line.verdict), reasons: Array.isArray(line.reasons) ? line.reasons.map(String) : [] },
  }
}

/**
 * The decision explorer's API (/admin/explorer/*, scope pdp:admin): explain a request, compare it under the shadow
 * policy or an edit held in memory, list and stream recent decisions, count them per minute, and the subject
 * view's device list. Nothing here changes state; the page's actions go through the existing admin routes.
 */
const explorerRoutes: FastifyPluginAsyncTypebox<ExplorerRoutesOptions> = async (app, opts) => {
  const auth = app.requireScope('pdp:admin')
  const errors = { 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema, 429: ErrorSchema }
  const security = requires('pdp:admin')
  const ring = new DecisionRing(opts.ringSize, redaction(opts.redactPaths), opts.statsMinutes)
  const hub = new StreamHub({ max: opts.streamMax, heartbeatMs: opts.heartbeatMs, draining: () => app.lifecycle.draining })
  const stop = app.onDecision((entry) => {
    const slot = ring.push(entry)
    if (hub.open > 0) hub.publish(ring.lineOf(slot))
  })
  const onReload = () => hub.broadcast('policy', app.policy.status())
  app.policy.on('reload', onReload)
  app.addHook('preClose', (done) => {
    hub.closeAll()
    done()
  })
  app.addHook('onClose', (_app, done) => {
    stop()
    app.policy.off('reload', onReload)
    done()
  })

  const explainer = new Explainer({
    policy: app.policy,
    store: app.store,
    ...(app.tokenVerifier ? { tokens: app.tokenVerifier } : {}),
    now: opts.now,
    defaultTenant: opts.defaultTenant,
    storeFailure: opts.storeFailure,
    geo: opts.geo,
  })

  const choose = (body: { request?: DecisionInput; logLine?: string; decisionId?: string }): Chosen => {
    const given = (['request', 'logLine', 'decisionId'] as const).filter((k) => body[k] !== undefined)
    if (given.length !== 1) throw new PdpHttpError('VALIDATION', 'send exactly one of /request, /logLine and /decisionId', `/${given[1] ?? 'request'}`)
    if (body.request) {
      checkInput(body.request)
      const { explain: _explain, ...request } = body.request
      // The token is decided on but never sent back: an answer holds no credential.
      const shown = request.token === undefined ? request : { ...request, token: '[redacted]' }
      return { request: shown as Record<string, unknown>, input: request, masked: [] }
    }
    if (body.decisionId !== undefined) {
      const line = ring.get(body.decisionId)
      if (!line) throw new PdpHttpError('NOT_FOUND', `decision ${body.decisionId} is not in memory (the last ${opts.ringSize} are kept)`, '/decisionId')
      return fromLine(line, '/decisionId')
    }
    let line: unknown
    try {
      line = JSON.parse(body.logLine!)
    } catch {
      throw new PdpHttpError('VALIDATION', '/logLine is not valid JSON', '/logLine')
    }
    if (line === null || typeof line !== 'object' || Array.isArray(line)) throw new PdpHttpError('VALIDATION', '/logLine is not a JSON object', '/logLine')
    return fromLine(line as Record<string, unknown>, '/logLine')
  }

  const shadowBundle = (field: string): PolicyBundle => {
    if (!app.shadowPolicy) throw new PdpHttpError('VALIDATION', 'no shadow policy directory is configured (PDP_SHADOW_POLICY_DIR)', field)
    return app.shadowPolicy.current
  }

  /** The active directory's files with the edited ones replaced, validated in memory; nothing is written. */
  const editedBundle = async (files: Record<string, string>): Promise<{ bundle: PolicyBundle; base: string }> => {
    const names = Object.keys(files)
    if (names.length === 0) throw new PdpHttpError('VALIDATION', '/files names no policy file', '/files')
    for (const name of names) {
      if (!POLICY_FILE_NAMES.includes(name)) throw new PdpHttpError('VALIDATION', `/files/${name} is not a policy file (${POLICY_FILE_NAMES.join(', ')})`, `/files/${name}`)
    }
    const bytes = names.reduce((sum, name) => sum + Buffer.byteLength(files[name]!), 0)
    if (bytes > opts.editMaxBytes) throw new PdpHttpError('VALIDATION', `/files holds ${bytes} bytes; at most ${opts.editMaxBytes} are allowed (PDP_EXPLORER_EDIT_MAX_BYTES)`, '/files')
    const snapshot = await readPolicySnapshot(app.policy.current.dir).catch((err: Error) => {
      throw new PdpHttpError('CONFLICT', `the policy directory cannot be read now (${err.message}); try again`)
    })
    const merged = new Map(snapshot.files)
    for (const name of names) merged.set(name, files[name]!)
    try {
      const bundle = await buildPolicyBundle({ dir: snapshot.dir, files: merged, version: hashFiles(merged), stamp: '' })
      return { bundle, base: snapshot.version }
    } catch (err) {
      // Whatever a reload would reject, the edit is rejected for: it is the operator's text, not a fault of the PDP.
      const field = err instanceof PolicyFileError && names.includes(err.file) ? `/files/${err.file}` : '/files'
      throw new PdpHttpError('VALIDATION', `the edit is rejected: ${(err as Error).message}`, field)
    }
  }

  app.post(
    '/admin/explorer/explain',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security,
        operationId: 'explorerExplain',
        summary: 'Explain a decision: verdict, matched rules with file and line, role sources, risk, step-up and gateway answers',
        description: 'Decided as /decide would, but nothing is learnt, logged or triggered. Give a request, a decision-log line or a remembered decisionId.',
        body: ExplainBodySchema,
        response: { 200: ExplainResponseSchema, 404: ErrorSchema, ...errors },
      },
    },
    async (request) => {
      const chosen = choose(request.body)
      const role = request.body.policy ?? 'active'
      const bundle = role === 'shadow' ? shadowBundle('/policy') : app.policy.current
      const result = await explainer.explain(chosen.input, bundle, opts.now())
      return { request: chosen.request, masked: chosen.masked, ...(chosen.logged ? { logged: chosen.logged } : {}), policy: { role, revision: bundle.version }, result }
    },
  )

  app.post(
    '/admin/explorer/what-if',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security,
        operationId: 'explorerWhatIf',
        summary: 'The same request under the active policy and under the shadow policy or an edit held in memory, with the differences',
        description: 'An edit replaces whole policy files in memory, validated as a reload would (400 naming file and line); it is never written to disk.',
        body: WhatIfBodySchema,
        response: { 200: WhatIfResponseSchema, 404: ErrorSchema, 409: ErrorSchema, ...errors },
      },
    },
    async (request) => {
      const { shadow, files } = request.body
      if ((shadow === true) === (files !== undefined)) throw new PdpHttpError('VALIDATION', 'send either /shadow: true or /files', '/files')
      const chosen = choose(request.body)
      const active = app.policy.current
      const candidate = files !== undefined ? { source: 'edit' as const, ...(await editedBundle(files)) } : { source: 'shadow' as const, bundle: shadowBundle('/shadow') }
      // One instant for both, so that only the policy differs.
      const now = opts.now()
      const [a, c] = await Promise.all([explainer.explain(chosen.input, active, now), explainer.explain(chosen.input, candidate.bundle, now)])
      return {
        request: chosen.request,
        masked: chosen.masked,
        active: { revision: active.version, result: a },
        candidate: { source: candidate.source, revision: candidate.bundle.version, ...('base' in candidate ? { base: candidate.base } : {}), result: c },
        differences: differences(a, c),
      }
    },
  )

  app.get(
    '/admin/explorer/policy-files',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security,
        operationId: 'explorerPolicyFiles',
        summary: 'The policy files as they are on disk, to start a what-if edit from',
        response: { 200: PolicyFilesResponseSchema, 409: ErrorSchema, ...errors },
      },
    },
    async () => {
      const snapshot = await readPolicySnapshot(app.policy.current.dir).catch((err: Error) => {
        throw new PdpHttpError('CONFLICT', `the policy directory cannot be read now (${err.message}); try again`)
      })
      return { revision: snapshot.version, activeRevision: app.policy.current.version, files: Object.fromEntries(snapshot.files) }
    },
  )

  const filterOf = (query: LiveFilter): LiveFilter => {
    const filter: LiveFilter = {}
    for (const key of ['verdict', 'reason', 'subject', 'route'] as const) if (query[key] !== undefined) filter[key] = query[key]
    return filter
  }

  app.get(
    '/admin/explorer/decisions',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security,
        operationId: 'explorerRecentDecisions',
        summary: 'Recent decisions held in memory, newest first, filtered by verdict, reason, subject and route',
        querystring: LiveQuerySchema,
        response: { 200: Type.Object({ decisions: Type.Array(DecisionLineSchema) }), ...errors },
      },
    },
    async (request) => ({ decisions: ring.recent(request.query.limit ?? 100, filterOf(request.query)) }),
  )

  app.get(
    '/admin/explorer/decisions/:id',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security,
        operationId: 'explorerDecision',
        summary: 'One decision still held in memory, as its decision-log line',
        params: Type.Object({ id: Id('Decision id') }),
        response: { 200: DecisionLineSchema, 404: ErrorSchema, ...errors },
      },
    },
    async (request) => {
      const line = ring.get(request.params.id)
      if (!line) throw new PdpHttpError('NOT_FOUND', `decision ${request.params.id} is not in memory`)
      return line
    },
  )

  app.get(
    '/admin/explorer/stream',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security,
        operationId: 'explorerStream',
        summary: 'Decisions as they are made (server-sent events "decision"; "policy" on every reload), filtered like /admin/explorer/decisions',
        description: 'Starts with the newest `limit` matching decisions. At most PDP_EXPLORER_STREAM_MAX streams are open at once (429 past it).',
        querystring: LiveQuerySchema,
        produces: ['text/event-stream'],
        response: { 200: Type.String({ description: 'text/event-stream' }), ...errors },
      },
    },
    async (request, reply) => {
      if (hub.full) throw new PdpHttpError('RATE_LIMITED', `${hub.open} live streams are open; at most ${opts.streamMax} are allowed (PDP_EXPLORER_STREAM_MAX)`)
      const filter = filterOf(request.query)
      const backlog = ring.recent(request.query.limit ?? 100, filter).reverse()
      reply.hijack()
      hub.add(reply.raw, filter, backlog)
    },
  )

  app.get(
    '/admin/explorer/stats',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security,
        operationId: 'explorerStats',
        summary: 'Decisions per minute by verdict and reason over the last PDP_EXPLORER_STATS_MINUTES minutes',
        response: { 200: StatsResponseSchema, ...errors },
      },
    },
    async () => ({ minutes: ring.stats(opts.now()), streams: { open: hub.open, max: opts.streamMax } }),
  )

  app.get(
    '/admin/subjects/:id/devices',
    {
      preHandler: auth,
      schema: {
        tags: ['admin'],
        security,
        operationId: 'listSubjectDevices',
        summary: 'Devices of a subject\'s sessions, with their stored trust and first and last sighting',
        params: Type.Object({ id: Id('Subject identifier') }),
        response: { 200: DevicesResponseSchema, ...errors },
      },
    },
    async (request) => {
      const subject = request.params.id
      const sessions = await listSessions(app.store, subject)
      const bySession = new Map<string, string[]>()
      for (const s of sessions) if (s.device !== undefined) bySession.set(s.device, [...(bySession.get(s.device) ?? []), s.id])
      const batch = app.store.batch()
      const reads = [...bySession.keys()].map((id) => ({ id, fields: batch.hGetAll(riskKeys.device(subject, id)) }))
      await batch.exec()
      const number = (raw: string | undefined) => (raw === undefined || !Number.isFinite(Number(raw)) ? {} : { value: Number(raw) })
      return {
        subject,
        devices: reads.map(({ id, fields }) => {
          const f = fields.value
          const trust = number(f.trust)
          const first = number(f.firstSeen)
          const last = number(f.lastSeen)
          return {
            id,
            sessions: bySession.get(id)!,
            ...('value' in trust ? { trust: trust.value } : {}),
            ...('value' in first ? { firstSeen: first.value } : {}),
            ...('value' in last ? { lastSeen: last.value } : {}),
          }
        }),
      }
    },
  )
}

export default explorerRoutes
