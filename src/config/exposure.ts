import { isIP } from 'node:net'
import type { Config } from './config.js'

const LOOPBACK_NAMES = new Set(['localhost', 'ip6-localhost', 'ip6-loopback'])

function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '')
  if (LOOPBACK_NAMES.has(bare.toLowerCase())) return true
  if (isIP(bare) === 4) return bare.startsWith('127.')
  return bare === '::1'
}

/**
 * What an operator must hear at start when anyone on the network may ask for decisions: they are answered, but
 * only token-verified decisions (and those of callers with scope pdp:decide) learn or trigger responses.
 */
export function exposureWarning(config: Pick<Config, 'host' | 'decideAuth'>): string | undefined {
  if (config.decideAuth !== 'none' || isLoopback(config.host)) return undefined
  return (
    `POST /decide accepts unauthenticated callers on ${config.host}: anyone who reaches this address may ask about any subject. ` +
    'Their decisions change no state, but set PDP_DECIDE_AUTH=token so that services authenticate (scope pdp:decide) and their decisions learn.'
  )
}
