import { BlockList, isIP } from 'node:net'
import { normaliseIp } from '../engine/ip-address.js'

export class TrustedProxies {
  private readonly list = new BlockList()

  /** `cidrs`: addresses or CIDR ranges (v4 or v6) of the proxies whose forwarding headers are believed. */
  constructor(cidrs: readonly string[]) {
    for (const entry of cidrs) {
      const [address = '', prefix] = entry.split('/')
      const family = isIP(address)
      if (family === 0) throw new Error(`"${entry}" is not an IP address or CIDR range`)
      const type = family === 4 ? 'ipv4' : 'ipv6'
      if (prefix === undefined) this.list.addAddress(address, type)
      else {
        const bits = Number(prefix)
        if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) throw new Error(`"${entry}" has an invalid prefix length`)
        this.list.addSubnet(address, bits, type)
      }
    }
  }

  trusts(ip: string): boolean {
    const address = normaliseIp(ip)
    const family = isIP(address)
    return family !== 0 && this.list.check(address, family === 4 ? 'ipv4' : 'ipv6')
  }
}

/**
 * The client's address. Forwarding headers are believed only from trusted proxies, and only as far
 * as the chain of trusted hops goes: walking X-Forwarded-For from the right, the first address that
 * is not a trusted proxy is the client. From an untrusted peer every forwarding header is ignored,
 * so a client cannot choose its own address.
 */
export function clientIp(peer: string, forwardedFor: string | string[] | undefined, realIp: string | string[] | undefined, trusted: TrustedProxies): string {
  const remote = normaliseIp(peer)
  if (!trusted.trusts(remote)) return remote
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? ''))
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '')
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normaliseIp(hops[i]!)
    // A malformed entry ends what can be believed; the last trusted hop is the best known address.
    if (isIP(hop) === 0) return remote
    if (!trusted.trusts(hop)) return hop
  }
  const real = Array.isArray(realIp) ? realIp[0] : realIp
  if (real !== undefined && isIP(normaliseIp(real.trim())) !== 0) return normaliseIp(real.trim())
  return hops.length > 0 ? normaliseIp(hops[0]!) : remote
}
