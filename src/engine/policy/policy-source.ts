import { EventEmitter } from 'node:events'
import { watch, type FSWatcher } from 'node:fs'
import type { Clock } from '../types.js'
import type { PolicyBundle } from './bundle.js'

export interface PolicyStatus {
  activeRevision: string
  engine: string
  ruleCount: number
  /** ISO time of the last successful activation. */
  lastSuccess: string
  lastError?: { message: string; at: string }
  reloads: { success: number; failure: number }
}

export type ReloadResult = { ok: true; version: string; changed: boolean } | { ok: false; error: string }

export interface PolicySourceOptions {
  dir: string
  load: (dir: string) => Promise<PolicyBundle>
  now: Clock
}

export interface PolicySourceEvents {
  /** After every reload attempt (file change, signal or API), with the bundle now active. */
  reload: [result: ReloadResult, bundle: PolicyBundle]
}

/**
 * Holds the active policy bundle. A reload builds a complete new bundle and replaces the one
 * reference only when it validated, so in-flight decisions keep the bundle they started with
 * and a broken edit leaves the last good policy serving.
 */
export class PolicySource extends EventEmitter<PolicySourceEvents> {
  private bundle: PolicyBundle
  private lastSuccess: number
  private lastError: { message: string; at: string } | undefined
  private readonly counts = { success: 0, failure: 0 }
  private inFlight: Promise<ReloadResult> | undefined
  private again = false
  private watcher: FSWatcher | undefined
  private timer: NodeJS.Timeout | undefined

  private constructor(
    private readonly options: PolicySourceOptions,
    first: PolicyBundle,
  ) {
    super()
    this.bundle = first
    this.lastSuccess = options.now()
  }

  /** Loads the directory once; a broken policy throws, so start-up fails loudly. */
  static async open(options: PolicySourceOptions): Promise<PolicySource> {
    return new PolicySource(options, await options.load(options.dir))
  }

  get current(): PolicyBundle {
    return this.bundle
  }

  status(): PolicyStatus {
    const status: PolicyStatus = {
      activeRevision: this.bundle.version,
      engine: this.bundle.evaluator.engine,
      ruleCount: this.bundle.evaluator.ruleCount,
      lastSuccess: new Date(this.lastSuccess).toISOString(),
      reloads: { ...this.counts },
    }
    if (this.lastError) status.lastError = { ...this.lastError }
    return status
  }

  /** Concurrent triggers share one load; a trigger that arrives during a load schedules one more. */
  reload(): Promise<ReloadResult> {
    if (this.inFlight) {
      this.again = true
      return this.inFlight
    }
    this.inFlight = this.loadOnce().finally(() => {
      this.inFlight = undefined
      if (this.again) {
        this.again = false
        void this.reload()
      }
    })
    return this.inFlight
  }

  private async loadOnce(): Promise<ReloadResult> {
    let result: ReloadResult
    try {
      const next = await this.options.load(this.options.dir)
      const changed = next.version !== this.bundle.version
      this.bundle = next
      this.lastSuccess = this.options.now()
      this.lastError = undefined
      this.counts.success++
      result = { ok: true, version: next.version, changed }
    } catch (err) {
      const message = (err as Error).message
      this.lastError = { message, at: new Date(this.options.now()).toISOString() }
      this.counts.failure++
      result = { ok: false, error: message }
    }
    this.emit('reload', result, this.bundle)
    return result
  }

  /** Reloads after files in the directory change, once they have been quiet for `debounceMs`. */
  watch(debounceMs: number): void {
    if (this.watcher) return
    this.watcher = watch(this.options.dir, { persistent: false }, () => {
      if (this.timer) clearTimeout(this.timer)
      this.timer = setTimeout(() => {
        this.timer = undefined
        void this.reload()
      }, debounceMs)
    })
    this.watcher.on('error', (err) => {
      this.lastError = { message: `watching ${this.options.dir} failed: ${err.message}`, at: new Date(this.options.now()).toISOString() }
    })
  }

  async close(): Promise<void> {
    this.watcher?.close()
    this.watcher = undefined
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    await this.inFlight
  }
}
