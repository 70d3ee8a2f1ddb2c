import { createHmac } from 'node:crypto'

export interface WebhookOptions {
  url: string
  /** HMAC-SHA256 key; never logged, never sent. */
  secret: string
  /** Per attempt. */
  timeoutMs: number
  /** Attempts after the first. */
  retries: number
  /** Wait before retry n is backoffMs × 2^(n-1). */
  backoffMs: number
  /** Deliveries waiting or in flight; past it new ones are dropped (and reported). */
  maxQueue?: number
  now?: () => number
  fetch?: typeof fetch
  /** Told about a delivery given up (after every retry) or dropped; never sees the secret. */
  onFailure?: (problem: { id: string; attempts: number; error: string }) => void
  onDelivered?: (delivery: { id: string; attempts: number }) => void
}

/**
 * `t=<epoch seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Signing the timestamp with the body lets a
 * receiver reject replays of an old delivery.
 */
export function webhookSignature(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')
  return `t=${timestampSeconds},v1=${mac}`
}

export interface WebhookNotifier {
  /** Queues a delivery and returns at once. */
  send(payload: { id: string }): void
  /** Resolves when every queued delivery has been delivered or given up. */
  settled(): Promise<void>
}

/** Signed JSON webhooks, delivered in the background with a time-out per attempt and retries with back-off. */
export function createWebhookNotifier(options: WebhookOptions): WebhookNotifier {
  const fetchImpl = options.fetch ?? fetch
  const now = options.now ?? Date.now
  const maxQueue = options.maxQueue ?? 1000
  const inFlight = new Set<Promise<void>>()
  let waiting = 0

  async function deliver(payload: { id: string }): Promise<void> {
    const body = JSON.stringify(payload)
    let lastError = ''
    for (let attempt = 0; attempt <= options.retries; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, options.backoffMs * 2 ** (attempt - 1)))
      try {
        const response = await fetchImpl(options.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-pdp-signature': webhookSignature(options.secret, Math.floor(now() / 1000), body),
            'x-pdp-delivery': payload.id,
          },
          body,
          signal: AbortSignal.timeout(options.timeoutMs),
          redirect: 'manual',
        })
        await response.body?.cancel()
        if (response.ok) {
          options.onDelivered?.({ id: payload.id, attempts: attempt + 1 })
          return
        }
        lastError = `HTTP ${response.status}`
        // A 4xx other than 408/429 will not get better by trying again.
        if (response.status < 500 && response.status !== 408 && response.status !== 429) break
      } catch (err) {
        lastError = (err as Error).name === 'TimeoutError' ? `timed out after ${options.timeoutMs} ms` : (err as Error).message
      }
    }
    options.onFailure?.({ id: payload.id, attempts: options.retries + 1, error: lastError })
  }

  return {
    send(payload) {
      if (waiting >= maxQueue) {
        options.onFailure?.({ id: payload.id, attempts: 0, error: 'webhook queue full; delivery dropped' })
        return
      }
      waiting++
      const work = deliver(payload).finally(() => {
        waiting--
        inFlight.delete(work)
      })
      inFlight.add(work)
    },
    async settled() {
      while (inFlight.size > 0) await Promise.all([...inFlight])
    },
  }
}
