import { randomFillSync } from 'node:crypto'

let lastMs = -1
let sequence = 0

// Random bytes are drawn from the OS in blocks rather than per id: one system call per 256 ids.
const POOL_SIZE = 16 * 256
const pool = Buffer.alloc(POOL_SIZE)
let offset = POOL_SIZE

function random16(): Buffer {
  if (offset + 16 > POOL_SIZE) {
    randomFillSync(pool)
    offset = 0
  }
  const bytes = Buffer.from(pool.subarray(offset, offset + 16))
  offset += 16
  return bytes
}

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond timestamp, then a 12-bit counter that keeps ids
 * generated in the same millisecond in order, then random bits. Sortable by creation time.
 */
export function decisionId(nowMs: number): string {
  const bytes = random16()
  if (nowMs === lastMs) {
    sequence = (sequence + 1) & 0xfff
  } else {
    lastMs = nowMs
    // Start each millisecond low in the counter's range, so that many ids in one millisecond still fit.
    sequence = bytes.readUInt16BE(6) & 0x7ff
  }
  const ms = BigInt(Math.max(0, Math.floor(nowMs)))
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn)
  bytes[6] = 0x70 | (sequence >> 8)
  bytes[7] = sequence & 0xff
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
