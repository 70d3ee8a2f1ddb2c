import { decisionLine, type Redaction } from '../audit/audit-log.js'
import type { DecisionLogEntry } from '../engine/ports.js'

/** A decision as the explorer shows it: the decision-log line, redacted exactly as the log redacts it. */
export type DecisionLine = Record<string, unknown> & { decision_id: string; verdict: string; reasons: string[]; time: string }

export interface LiveFilter {
  verdict?: string
  reason?: string
  subject?: string
  /** Matched anywhere in "action type/id", e.g. "read documents/42" or "documents". */
  route?: string
}

export interface MinuteCounts {
  /** ISO time of the minute's start. */
  minute: string
  verdicts: Record<string, number>
  reasons: Record<string, number>
}

const routeOf = (line: DecisionLine) => {
  const resource = line.resource as { type?: string; id?: string } | undefined
  return `${String(line.action)} ${resource?.type ?? ''}${resource?.id === undefined ? '' : `/${resource.id}`}`
}

export function matchesFilter(line: DecisionLine, filter: LiveFilter): boolean {
  if (filter.verdict !== undefined && line.verdict !== filter.verdict) return false
  if (filter.reason !== undefined && !line.reasons.includes(filter.reason)) return false
  if (filter.subject !== undefined && line.subject !== filter.subject) return false
  if (filter.route !== undefined && !routeOf(line).includes(filter.route)) return false
  return true
}

export interface Slot {
  entry: DecisionLogEntry
  line?: DecisionLine
}

/**
 * The last `size` decisions, oldest overwritten first, and per-minute counts by verdict and reason.
 * Entries are kept as the engine made them and turned into (redacted) log lines only when read, so that
 * recording costs a decision nothing but a slot; the ring never holds more than `size` of them.
 */
export class DecisionRing {
  private readonly slots: (Slot | undefined)[]
  private next = 0
  private readonly minutes = new Map<number, { verdicts: Map<string, number>; reasons: Map<string, number> }>()

  constructor(
    readonly size: number,
    private readonly redaction: Redaction,
    private readonly statsMinutes: number,
  ) {
    this.slots = new Array<Slot | undefined>(size)
  }

  /**
   * Records a decision; its slot, to read its line from. No index by decision id: a Map of the ring's ids, set and
   * deleted on every decision, tripled the time of each young-generation collection (10 µs more per decision in
   * process), where finding an id by scanning the ring costs microseconds only when someone looks one up.
   */
  push(entry: DecisionLogEntry): Slot {
    const slot: Slot = { entry }
    this.slots[this.next] = slot
    this.next = (this.next + 1) % this.size
    this.count(entry)
    return slot
  }

  private count(entry: DecisionLogEntry): void {
    const minute = Math.floor(entry.time / 60_000)
    let bucket = this.minutes.get(minute)
    if (!bucket) {
      bucket = { verdicts: new Map(), reasons: new Map() }
      this.minutes.set(minute, bucket)
      for (const m of this.minutes.keys()) if (m <= minute - this.statsMinutes) this.minutes.delete(m)
    }
    const { decision } = entry
    bucket.verdicts.set(decision.decision, (bucket.verdicts.get(decision.decision) ?? 0) + 1)
    for (const reason of decision.reasons) bucket.reasons.set(reason, (bucket.reasons.get(reason) ?? 0) + 1)
  }

  lineOf(slot: Slot): DecisionLine {
    slot.line ??= decisionLine(slot.entry, this.redaction) as DecisionLine
    return slot.line
  }

  get(decisionId: string): DecisionLine | undefined {
    for (const slot of this.slots) if (slot?.entry.decision.decisionId === decisionId) return this.lineOf(slot)
    return undefined
  }

  /** The newest `limit` decisions that pass the filter, newest first. */
  recent(limit: number, filter: LiveFilter = {}): DecisionLine[] {
    const out: DecisionLine[] = []
    for (let i = 1; i <= this.size && out.length < limit; i++) {
      const slot = this.slots[(this.next - i + this.size) % this.size]
      if (!slot) break
      const line = this.lineOf(slot)
      if (matchesFilter(line, filter)) out.push(line)
    }
    return out
  }

  /** One entry per minute of the window ending at `now`, oldest first; minutes without decisions count zero. */
  stats(now: number): MinuteCounts[] {
    const last = Math.floor(now / 60_000)
    const out: MinuteCounts[] = []
    for (let m = last - this.statsMinutes + 1; m <= last; m++) {
      const bucket = this.minutes.get(m)
      out.push({
        minute: new Date(m * 60_000).toISOString(),
        verdicts: Object.fromEntries(bucket?.verdicts ?? []),
        reasons: Object.fromEntries(bucket?.reasons ?? []),
      })
    }
    return out
  }
}
