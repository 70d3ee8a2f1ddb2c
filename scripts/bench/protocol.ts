/** What scripts/bench/run.ts and its server processes (scripts/bench/servers.ts) say to each other over IPC. */

/** Event-loop delay over an interval, in ms, the sampling interval already taken off. */
export interface LoopDelay {
  p50: number
  p99: number
  max: number
  samples: number
}

/** Boundaries timestamped per request with --stages, in lifecycle order. */
export const STAGE_MARKS = ['request', 'preParsing', 'preValidation', 'preHandler', 'preSerialization', 'onSend', 'onResponse'] as const
export type StageMark = (typeof STAGE_MARKS)[number]

export type ServerMessage =
  | { type: 'listening'; port: number }
  | { type: 'usage'; cpuMicros: number; rss: number; loopDelay: LoopDelay }
  | { type: 'stages'; requests: number; cpuMicros: number; meanMicros: Record<string, number> }
  | { type: 'failed'; message: string }

export type ParentMessage = { type: 'usage' } | { type: 'stages' }
