import { MemoryStateStore } from './memory-store.js'
import type { RedisStateStoreOptions } from './redis-store.js'
import type { StateStore } from '../engine/ports.js'

export { MemoryStateStore } from './memory-store.js'
export { StoreUnavailableError } from './state-store.js'
export type { Pending, StateStore, StoreBatch } from '../engine/ports.js'

export interface StateStoreOptions {
  /** Redis when given (or `sentinels`, or `clusterNodes`); the embedded memory store otherwise. */
  redisUrl?: string
  sentinels?: { host: string; port: number }[]
  sentinelMaster?: string
  /** Redis Cluster: a batch runs as one script per hash slot it touches. */
  clusterNodes?: { host: string; port: number }[]
  prefix?: string
  timeoutMs?: number
  now?: () => number
  maxKeys?: number
  maxBytes?: number
  onError?: (error: Error) => void
}

export async function createStateStore(options: StateStoreOptions): Promise<StateStore> {
  const cluster = options.clusterNodes !== undefined && options.clusterNodes.length > 0
  if (options.redisUrl || (options.sentinels && options.sentinels.length > 0) || cluster) {
    const redis: RedisStateStoreOptions = {}
    if (options.redisUrl) redis.url = options.redisUrl
    if (options.sentinels && options.sentinels.length > 0) redis.sentinels = options.sentinels
    if (options.sentinelMaster !== undefined) redis.sentinelMaster = options.sentinelMaster
    if (cluster) redis.clusterNodes = options.clusterNodes!
    if (options.prefix !== undefined) redis.prefix = options.prefix
    if (options.timeoutMs !== undefined) redis.timeoutMs = options.timeoutMs
    if (options.onError) redis.onError = options.onError
    // Loaded only here: the Redis client costs a start about 100 ms of CPU, and the embedded store needs none of it.
    const { RedisStateStore } = await import('./redis-store.js')
    return RedisStateStore.connect(redis)
  }
  const memory: ConstructorParameters<typeof MemoryStateStore>[0] = {}
  if (options.now) memory.now = options.now
  if (options.maxKeys !== undefined) memory.maxKeys = options.maxKeys
  if (options.maxBytes !== undefined) memory.maxBytes = options.maxBytes
  return new MemoryStateStore(memory)
}
