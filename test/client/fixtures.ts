import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { DecisionInput } from '../../src/engine/pdp.js'
import { trustedContext } from '../helpers/build.js'

/**
 * Time-out for clients of a live PDP in tests that are not about time-outs: the first decision of a fresh
 * process loads the geolocation data, which on a loaded CI machine can take longer than the client's default.
 */
export const LIVE_TIMEOUT_MS = 10_000

interface TestLike {
  teardown(fn: () => unknown): void
}

/** Questions with a known verdict under the example policy, for a PDP whose clock reads `nowMs`. */
export function questions(nowMs: number) {
  const nowS = Math.floor(nowMs / 1000)
  const carol = { id: 'carol', tenant: 'acme' }
  const own = { type: 'documents', id: 'd1', attributes: { owner: 'carol' } }
  return {
    /** Employees may create documents; a managed device and a fresh session add no risk. */
    allow: { subject: carol, action: 'create', resource: { type: 'documents' }, context: trustedContext(nowMs) } satisfies DecisionInput,
    /** Nothing lets an employee read someone else's document. */
    deny: { subject: carol, action: 'read', resource: { type: 'documents', id: 'd2', attributes: { owner: 'dave' } }, context: trustedContext(nowMs) } satisfies DecisionInput,
    /** Allowed by policy, but an unknown device and a password-only login at high sensitivity ask for more. */
    stepUp: {
      subject: carol,
      action: 'read',
      resource: own,
      context: { device: { id: 'new-phone' }, session: { authTime: nowS - 600, amr: ['pwd'] }, sensitivity: 'high' },
    } satisfies DecisionInput,
    /** A token the PDP cannot verify (no issuer is configured): deny with token_invalid. */
    badToken: { token: 'not-a-jwt', action: 'read', resource: own } satisfies DecisionInput,
  }
}

/** A loopback server that accepts connections and never answers, closed when the test ends. */
export async function silentServer(t: TestLike): Promise<string> {
  const server = createServer(() => {})
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  return listen(server)
}

/** A loopback URL on which nothing listens (a port that was just released). */
export async function refusedUrl(): Promise<string> {
  const server = createServer()
  const url = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return url
}

export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
