import { randomBytes } from 'node:crypto'

let lastMs = -1
let sequence = 0

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond timestamp, then a 12-bit counter that keeps ids
 * generated in the same millisecond in order, then random bits. Sortable by creation time.
 */
export function decisionId(nowMs: number): string {
  if (nowMs === lastMs) {
    sequence = (sequence + 1) & 0xfff
  } else {
    lastMs = nowMs
    sequence = randomBytes(2).readUInt16BE(0) & 0x7ff
  }
  const bytes = randomBytes(16)
  const ms = BigInt(Math.max(0, Math.floor(nowMs)))
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn)
  bytes[6] = 0x70 | (sequence >> 8)
  bytes[7] = sequence & 0xff
  bytes[8] = (bytes[8]! & 0x3f) | 0x80
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
