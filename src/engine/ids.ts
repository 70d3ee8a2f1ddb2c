import { randomFillSync } from 'node:crypto'

let lastMs = -1
let sequence = 0

// Random bytes are drawn from the OS in blocks rather than per id: one system call per 256 ids.
const POOL_SIZE = 16 * 256
const pool = Buffer.alloc(POOL_SIZE)
let offset = POOL_SIZE

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond timestamp, then a 12-bit counter that keeps ids
 * generated in the same millisecond in order, then random bits. Sortable by creation time.
 * Built from the pool in place: one decision id per request, so it avoids BigInt and per-id buffers.
 */
export function decisionId(nowMs: number): string {
  if (offset + 16 > POOL_SIZE) {
    randomFillSync(pool)
    offset = 0
  }
  const at = offset
  offset += 16
  if (nowMs === lastMs) {
    sequence = (sequence + 1) & 0xfff
  } else {
    lastMs = nowMs
    // Start each millisecond low in the counter's range, so that many ids in one millisecond still fit.
    sequence = ((pool[at + 6]! << 8) | pool[at + 7]!) & 0x7ff
  }
  // 48 bits fit a double exactly: the high 16 and the low 32 are split without BigInt.
  const ms = Math.max(0, Math.floor(nowMs))
  const high = Math.floor(ms / 0x1_0000_0000)
  const low = ms % 0x1_0000_0000
  const h = HEX
  const timestamp = h[(high >>> 8) & 0xff]! + h[high & 0xff]! + h[low >>> 24]! + h[(low >>> 16) & 0xff]! + '-' + h[(low >>> 8) & 0xff]! + h[low & 0xff]!
  const version = h[0x70 | (sequence >> 8)]! + h[sequence & 0xff]!
  const variant = h[(pool[at + 8]! & 0x3f) | 0x80]! + h[pool[at + 9]!]!
  let node = ''
  for (let i = at + 10; i < at + 16; i++) node += h[pool[i]!]!
  return `${timestamp}-${version}-${variant}-${node}`
}
