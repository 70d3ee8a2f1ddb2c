import { createLocalJWKSet, errors, type CompactJWSHeaderParameters, type FlattenedJWSInput, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose'

/** Checks that a parsed JWKS holds a keys array of public keys only; throws a message naming `source`. */
export function publicKeySet(value: unknown, source: string): JSONWebKeySet {
  const jwks = value as JSONWebKeySet | null
  if (!jwks || typeof jwks !== 'object' || !Array.isArray(jwks.keys)) throw new Error(`${source} has no "keys" array`)
  if (jwks.keys.some((k) => k?.kty === 'oct')) throw new Error(`${source} holds a symmetric key; only public keys are accepted`)
  return jwks
}

export interface RemoteJwksOptions {
  url: URL
  /** The clock of the back-off, cool-down and key age (the fetch time-out runs on real time). */
  now: () => number
  /** Longest wait for one fetch, body included. */
  timeoutMs: number
  /** Larger bodies are refused without being read whole. */
  maxBytes: number
  /** Keys older than this are refreshed in the background; decisions keep using them meanwhile. */
  maxAgeMs: number
  /** Shortest time between two fetches after a success: an unknown `kid` asks again at most this often. */
  cooldownMs: number
  /** After a failed fetch, none for this long; decisions meanwhile use the last good keys or fail at once. */
  failureBackoffMs: number
  /** Why a fetch failed, for the log. */
  onError?: (message: string) => void
}

/** No key set to verify with: the JWKS could not be fetched (or is backing off after a failure). */
export class JwksUnavailableError extends Error {
  readonly code = 'ERR_JWKS_UNAVAILABLE'
  override name = 'JwksUnavailableError'
}

async function readCapped(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<string> {
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel().catch(() => {})
      throw new Error(`JWKS body larger than ${maxBytes} bytes`)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/**
 * A remote JWKS as a jose key getter, every wait bounded: one fetch at a time, each with a time-out and a
 * body cap; after a failure no fetch for `failureBackoffMs` (jose's own remote set only cools down after a
 * success, so an endpoint answering 404 was asked again on nearly every decision). Once keys were fetched,
 * decisions never wait for a refresh: they use the last good keys while one runs, or while it backs off.
 */
export function remoteJwks(options: RemoteJwksOptions): JWTVerifyGetKey {
  let keys: JWTVerifyGetKey | undefined
  let fetchedAt = -Infinity
  let failedAt: number | undefined
  let lastError = 'not fetched yet'
  let inflight: Promise<void> | undefined

  const mayFetch = (now: number) => inflight === undefined && (failedAt === undefined ? now >= fetchedAt + options.cooldownMs : now >= failedAt + options.failureBackoffMs)

  async function load(): Promise<JWTVerifyGetKey> {
    const response = await fetch(options.url, { signal: AbortSignal.timeout(options.timeoutMs), redirect: 'error', headers: { accept: 'application/json' } })
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {})
      throw new Error(`JWKS endpoint answered ${response.status}`)
    }
    if (Number(response.headers.get('content-length')) > options.maxBytes) {
      await response.body?.cancel().catch(() => {})
      throw new Error(`JWKS body larger than ${options.maxBytes} bytes`)
    }
    const text = response.body ? await readCapped(response.body, options.maxBytes) : ''
    return createLocalJWKSet(publicKeySet(JSON.parse(text), 'the JWKS'))
  }

  function refresh(): Promise<void> {
    inflight ??= load()
      .then(
        (set) => {
          keys = set
          fetchedAt = options.now()
          failedAt = undefined
        },
        (err: unknown) => {
          failedAt = options.now()
          const error = err as Error
          lastError = error.name === 'TimeoutError' ? `no answer within ${options.timeoutMs} ms` : error.message
          options.onError?.(`JWKS fetch from ${options.url.origin} failed: ${lastError}`)
        },
      )
      .finally(() => {
        inflight = undefined
      })
    return inflight
  }

  const current = () => keys

  return async (header: CompactJWSHeaderParameters, token: FlattenedJWSInput) => {
    const now = options.now()
    if (current() === undefined) {
      if (mayFetch(now)) void refresh()
      // The first decisions wait for the first fetch (bounded by its time-out); later ones, during a back-off, do not.
      if (inflight !== undefined) await inflight
    } else if (now >= fetchedAt + options.maxAgeMs && mayFetch(now)) {
      void refresh()
    }
    const set = current()
    if (set === undefined) throw new JwksUnavailableError(`no JWKS keys: ${lastError}`)
    try {
      return await set(header, token)
    } catch (err) {
      // A key rotated in at the identity provider: ask again, at most once per cool-down.
      if (!(err instanceof errors.JWKSNoMatchingKey) || !mayFetch(options.now())) throw err
      await refresh()
      return (current() ?? set)(header, token)
    }
  }
}
