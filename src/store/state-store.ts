import type { Pending } from '../engine/ports.js'

/** The Pending a driver hands out and fills in when its batch runs. */
export class PendingSlot<T> implements Pending<T> {
  private set = false
  private result: T | undefined
  resolve(value: T): void {
    this.result = value
    this.set = true
  }
  get value(): T {
    if (!this.set) throw new Error('store value read before its batch ran (await batch.exec() first)')
    return this.result as T
  }
}

/** What hGetAll answers for a hash that does not exist: one frozen object, not a new one per read (callers only read it). */
export const NO_FIELDS: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>)

/** The store did not answer in time or refused the operation; callers turn this into a defined verdict. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'StoreUnavailableError'
  }
}
