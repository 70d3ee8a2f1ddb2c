import { BlockList, isIP } from 'node:net'

/**
 * What an IP address is: public (it may say where a user is), private or reserved, or not an address at all;
 * and its one canonical spelling, so that a block list and a location lookup judge the same address alike.
 */

export type AddressClass = 'public' | 'private' | 'invalid'

/** Ranges that never say where a user is: RFC 1918, loopback, link-local, CGNAT, unspecified, ULA and documentation. */
const NON_PUBLIC = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3],
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv4')
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
] as const) {
  NON_PUBLIC.addSubnet(net, prefix, 'ipv6')
}

/** Unwraps IPv4-mapped IPv6 (::ffff:10.0.0.1) so that it is judged as the IPv4 address it is. */
export function normaliseIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  return mapped ? mapped[1]! : ip
}

export function classifyIp(ip: string): AddressClass {
  const address = normaliseIp(ip)
  const family = isIP(address)
  if (family === 0) return 'invalid'
  return NON_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6') ? 'private' : 'public'
}
