import { EventEmitter } from 'node:events'
import { watch as watchDirectory, type FSWatcher } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename } from 'node:path'
import type { Clock } from '../types.js'
import type { PolicyBundle } from './bundle.js'
import { POLICY_FILE_NAMES, PolicyFilesChanging, readPolicySnapshot, stampPolicyFiles, type PolicySnapshot } from './policy-snapshot.js'

/**
 * off: only SIGHUP and the API reload; watching: file events and the poll follow the directory;
 * unwatched: the directory exists but file events cannot be had (only the poll follows it);
 * missing: the directory is gone or not a directory.
 */
export type WatchState = 'off' | 'watching' | 'unwatched' | 'missing'

export interface WatchStatus {
  state: WatchState
  /** ISO time the state began. */
  since: string
  /** Why the directory is missing or unwatched. */
  reason?: string
  /** ISO time a change was first seen that has not been stable for the settle window yet. */
  pendingSince?: string
}

export interface PolicyStatus {
  activeRevision: string
  engine: string
  ruleCount: number
  /** ISO time of the last successful activation. */
  lastSuccess: string
  lastError?: { message: string; at: string }
  reloads: { success: number; failure: number }
  watch: WatchStatus
}

export type ReloadResult = { ok: true; version: string; changed: boolean } | { ok: false; error: string }

export interface PolicySourceOptions {
  dir: string
  /** Validates the files of one snapshot into a bundle (throws on a broken policy). */
  build: (snapshot: PolicySnapshot) => Promise<PolicyBundle>
  now: Clock
}

export interface WatchOptions {
  /** Quiet time after a file event before the directory is looked at. */
  debounceMs: number
  /** How long every policy file must stay exactly as it is before a change is loaded. */
  settleMs: number
  /** Interval of the check that catches what events miss: a replaced or removed directory, a lost event. */
  pollMs: number
}

export interface PolicySourceEvents {
  /** After every load attempt (settled file change, signal or API), with the bundle now active. */
  reload: [result: ReloadResult, bundle: PolicyBundle]
  /** When the watcher's state changes. */
  watch: [status: WatchStatus]
}

/** A Kubernetes ConfigMap volume publishes by swapping this link; the files themselves are links through it. */
const CONFIGMAP_DATA_LINK = '..data'

/**
 * Holds the active policy bundle. A reload builds a complete new bundle and replaces the one
 * reference only when it validated, so in-flight decisions keep the bundle they started with
 * and a broken edit leaves the last good policy serving.
 *
 * A watched change is loaded only once every policy file has stayed the same (inode, size,
 * modification time, content) for the settle window, so a file written in several steps is not
 * served half-written unless the writer pauses longer than that window.
 */
export class PolicySource extends EventEmitter<PolicySourceEvents> {
  private bundle: PolicyBundle
  private lastSuccess: number
  private lastError: { message: string; at: string } | undefined
  private readonly counts = { success: 0, failure: 0 }
  /** Stamp of the files the last load read; a check that finds the same stamp has nothing to do. */
  private seenStamp: string
  /** Loads and checks run one at a time, so what a check read is what it activates. */
  private tail: Promise<unknown> = Promise.resolve()
  private queuedReload: Promise<ReloadResult> | undefined
  private queuedCheck: Promise<void> | undefined
  private watchOptions: WatchOptions | undefined
  private watchState: { state: WatchState; since: number; reason?: string }
  private watcher: FSWatcher | undefined
  /** Device, inode and birth time of the watched directory: a directory recreated under the same name differs. */
  private watchedId: string | undefined
  /** A change seen but not stable for the settle window yet, and when (clock time) it was first seen as it is. */
  private candidate: { fingerprint: string; since: number } | undefined
  private readonly timers: { debounce?: NodeJS.Timeout; settle?: NodeJS.Timeout; poll?: NodeJS.Timeout } = {}
  private closed = false

  private constructor(
    private readonly options: PolicySourceOptions,
    first: PolicyBundle,
    stamp: string,
  ) {
    super()
    this.bundle = first
    this.seenStamp = stamp
    this.lastSuccess = options.now()
    this.watchState = { state: 'off', since: this.lastSuccess }
  }

  /** Loads the directory once; a broken policy throws, so start-up fails loudly. */
  static async open(options: PolicySourceOptions): Promise<PolicySource> {
    const snapshot = await readPolicySnapshot(options.dir)
    return new PolicySource(options, await options.build(snapshot), snapshot.stamp)
  }

  get current(): PolicyBundle {
    return this.bundle
  }

  status(): PolicyStatus {
    const iso = (ms: number) => new Date(ms).toISOString()
    const watch: WatchStatus = { state: this.watchState.state, since: iso(this.watchState.since) }
    if (this.watchState.reason !== undefined) watch.reason = this.watchState.reason
    if (this.candidate) watch.pendingSince = iso(this.candidate.since)
    const status: PolicyStatus = {
      activeRevision: this.bundle.version,
      engine: this.bundle.evaluator.engine,
      ruleCount: this.bundle.evaluator.ruleCount,
      lastSuccess: iso(this.lastSuccess),
      reloads: { ...this.counts },
      watch,
    }
    if (this.lastError) status.lastError = { ...this.lastError }
    return status
  }

  /**
   * Loads what the directory holds now (SIGHUP, the API): no settle window, since the operator asks,
   * but never files that change while being read. Calls made before a queued load starts share it.
   */
  reload(): Promise<ReloadResult> {
    this.queuedReload ??= this.serial(() => {
      this.queuedReload = undefined
      return this.loadNow()
    })
    return this.queuedReload
  }

  /**
   * What a file event, the settle timer and the poll do: follow the directory (re-watch it when it was
   * replaced, report it missing) and load a change once it has been stable for the settle window.
   * Public so that a test can drive it with a manual clock.
   */
  check(): Promise<void> {
    this.queuedCheck ??= this.serial(() => {
      this.queuedCheck = undefined
      return this.checkNow()
    })
    return this.queuedCheck
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task)
    this.tail = run.catch(() => undefined)
    return run
  }

  private async loadNow(): Promise<ReloadResult> {
    let snapshot: PolicySnapshot
    try {
      snapshot = await readPolicySnapshot(this.options.dir)
    } catch (err) {
      return this.recordFailure(err as Error)
    }
    return this.activate(snapshot)
  }

  private async activate(snapshot: PolicySnapshot): Promise<ReloadResult> {
    this.seenStamp = snapshot.stamp
    let next: PolicyBundle
    try {
      next = await this.options.build(snapshot)
    } catch (err) {
      return this.recordFailure(err as Error)
    }
    const changed = next.version !== this.bundle.version
    this.bundle = next
    this.lastSuccess = this.options.now()
    this.lastError = undefined
    this.counts.success++
    const result: ReloadResult = { ok: true, version: next.version, changed }
    this.emit('reload', result, this.bundle)
    return result
  }

  private recordFailure(err: Error): ReloadResult {
    this.lastError = { message: err.message, at: new Date(this.options.now()).toISOString() }
    this.counts.failure++
    const result: ReloadResult = { ok: false, error: err.message }
    this.emit('reload', result, this.bundle)
    return result
  }

  private async checkNow(): Promise<void> {
    const options = this.watchOptions
    if (!options || this.closed) return
    if (!(await this.followDirectory(options))) {
      this.candidate = undefined
      return
    }
    const dir = this.options.dir
    const stamp = await stampPolicyFiles(dir)
    if (stamp === this.seenStamp) {
      this.candidate = undefined
      return
    }
    let snapshot: PolicySnapshot | undefined
    let failure: Error | undefined
    try {
      snapshot = await readPolicySnapshot(dir)
    } catch (err) {
      // Caught mid-write: nothing is stable yet; the writer's next event or the poll looks again.
      if (err instanceof PolicyFilesChanging) {
        this.candidate = undefined
        return
      }
      failure = err as Error
    }
    // A broken or incomplete directory settles too, so that its error is reported once, not per poll.
    const fingerprint = snapshot ? `${snapshot.stamp}/${snapshot.version}` : `${stamp}/${failure!.message}`
    const now = this.options.now()
    if (this.candidate?.fingerprint !== fingerprint) this.candidate = { fingerprint, since: now }
    const waited = now - this.candidate.since
    if (waited < options.settleMs) {
      this.arm('settle', options.settleMs - waited)
      return
    }
    this.candidate = undefined
    if (snapshot) {
      await this.activate(snapshot)
    } else {
      this.seenStamp = stamp
      this.recordFailure(failure!)
    }
  }

  /** Makes sure the directory that now has the configured name is the one watched; false when there is none. */
  private async followDirectory(options: WatchOptions): Promise<boolean> {
    const dir = this.options.dir
    let id: string
    try {
      const s = await stat(dir, { bigint: true })
      if (!s.isDirectory()) {
        this.unwatch()
        this.setWatchState('missing', `policy directory ${dir} is not a directory`)
        return false
      }
      id = `${s.dev}:${s.ino}:${s.birthtimeNs}`
    } catch (err) {
      this.unwatch()
      this.setWatchState('missing', `policy directory ${dir} is missing (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
      return false
    }
    if (this.closed) return false
    if (this.watcher && id === this.watchedId) return true
    this.unwatch()
    try {
      const watcher = watchDirectory(dir, { persistent: false }, (_event, name) => this.onEvent(name, options))
      watcher.on('error', (err) => {
        this.unwatch()
        this.setWatchState('unwatched', `watching ${dir} failed (${err.message}); checking every ${options.pollMs} ms`)
      })
      this.watcher = watcher
      this.watchedId = id
      this.setWatchState('watching')
    } catch (err) {
      this.setWatchState('unwatched', `cannot watch ${dir} (${(err as Error).message}); checking every ${options.pollMs} ms`)
    }
    return true
  }

  private onEvent(name: string | null, options: WatchOptions): void {
    if (name === basename(this.options.dir)) {
      // The directory itself was removed or renamed: this watcher now follows a dead or moved inode.
      this.unwatch()
    } else if (name !== null && name !== CONFIGMAP_DATA_LINK && !POLICY_FILE_NAMES.includes(name)) {
      // Swap, backup and temporary files: only the files a load reads (and a ConfigMap swap) count.
      return
    }
    this.arm('debounce', options.debounceMs)
  }

  private arm(timer: 'debounce' | 'settle', delayMs: number): void {
    if (this.closed) return
    clearTimeout(this.timers[timer])
    this.timers[timer] = setTimeout(() => {
      this.timers[timer] = undefined
      void this.check()
    }, delayMs).unref()
  }

  private unwatch(): void {
    this.watcher?.close()
    this.watcher = undefined
    this.watchedId = undefined
  }

  private setWatchState(state: WatchState, reason?: string): void {
    if (this.watchState.state === state && this.watchState.reason === reason) return
    this.watchState = reason === undefined ? { state, since: this.options.now() } : { state, since: this.options.now(), reason }
    this.emit('watch', this.status().watch)
  }

  /** Follows the directory: file events (after `debounceMs` of quiet) and a check every `pollMs`. */
  watch(options: WatchOptions): void {
    if (this.watchOptions || this.closed) return
    this.watchOptions = options
    this.timers.poll = setInterval(() => void this.check(), options.pollMs).unref()
    void this.check()
  }

  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.timers.poll)
    clearTimeout(this.timers.debounce)
    clearTimeout(this.timers.settle)
    this.unwatch()
    await this.tail
  }
}
