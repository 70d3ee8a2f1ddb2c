import { Type } from 'typebox'

export const WatchStatusSchema = Type.Object(
  {
    state: Type.Union([Type.Literal('off'), Type.Literal('watching'), Type.Literal('unwatched'), Type.Literal('missing')], {
      description: 'off: reloads only on SIGHUP and the API; watching: file events and a periodic check follow the directory; unwatched: no file events (only the periodic check); missing: the directory is gone',
    }),
    since: Type.String({ description: 'ISO time the state began' }),
    reason: Type.Optional(Type.String({ description: 'Why the directory is missing or unwatched' })),
    pendingSince: Type.Optional(Type.String({ description: 'ISO time a change was first seen that has not yet been stable for PDP_RELOAD_SETTLE_MS' })),
  },
  { description: 'How the policy directory is followed' },
)

export const PolicyStatusSchema = Type.Object({
  activeRevision: Type.String({ description: 'Hash of the active policy files' }),
  engine: Type.String({ description: 'Evaluator in use: indexed or casbin' }),
  ruleCount: Type.Integer(),
  lastSuccess: Type.String({ description: 'ISO time of the last successful activation' }),
  lastError: Type.Optional(Type.Object({ message: Type.String(), at: Type.String() })),
  reloads: Type.Object({ success: Type.Integer(), failure: Type.Integer() }),
  watch: WatchStatusSchema,
})
