import type { StepUpLevel } from '../engine/types.js'

/** A standing restriction written by a response action; the response gate enforces it on every decision. */
export interface Restriction {
  /** The rule that imposed it, or `admin` for a manual one. */
  rule: string
  /** Epoch ms. */
  since: number
  /** Epoch ms; absent: until lifted. */
  until?: number
  /** For step-ups: the level asked for. */
  level?: StepUpLevel
  /** For addresses: deny outright, or ask for a step-up. */
  mode?: 'deny' | 'step_up'
}

/**
 * Reads a stored restriction. An entry that is present but does not parse still restricts (with no
 * end), so damage to the store never lifts a lockout.
 */
export function readRestriction(raw: string | null): Restriction | undefined {
  if (raw === null) return undefined
  try {
    const parsed = JSON.parse(raw) as Partial<Restriction>
    if (typeof parsed.rule === 'string' && typeof parsed.since === 'number') return parsed as Restriction
  } catch {
    // fall through
  }
  return { rule: 'unknown', since: 0 }
}

export const isActive = (restriction: Restriction | undefined, now: number): restriction is Restriction =>
  restriction !== undefined && (restriction.until === undefined || restriction.until > now)
