import fp from 'fastify-plugin'
import type { GeoLookup } from '../engine/risk/geo.js'
import type { Clock } from '../engine/types.js'
import { createResponder, type Responder, type ResponseNotice } from '../response/responder.js'
import { createWebhookNotifier, type WebhookNotifier } from '../response/webhook.js'

declare module 'fastify' {
  interface FastifyInstance {
    responder: Responder
    /** Present when PDP_WEBHOOK_URL is configured. */
    webhook: WebhookNotifier | undefined
  }
}

export interface ResponsePluginOptions {
  now: Clock
  geo: GeoLookup
  webhook?: { url: string; secret: string; timeoutMs: number; retries: number; backoffMs?: number }
}

/** Security events, detection rules and automated response; owns the webhook queue and drains it on close. */
export default fp<ResponsePluginOptions>(
  async (app, opts) => {
    let webhook: WebhookNotifier | undefined
    if (opts.webhook) {
      const { url, secret, timeoutMs, retries, backoffMs } = opts.webhook
      webhook = createWebhookNotifier({
        url,
        secret,
        timeoutMs,
        retries,
        backoffMs: backoffMs ?? 500,
        now: opts.now,
        onDelivered: () => app.metrics.webhook('delivered'),
        onFailure: (problem) => {
          app.metrics.webhook('failed')
          app.log.warn({ delivery: problem.id, attempts: problem.attempts, error: problem.error }, 'webhook delivery given up')
        },
      })
    }
    const responder = createResponder({
      store: app.store,
      policy: app.policy,
      geo: opts.geo,
      now: opts.now,
      audit: (type, fields) => app.audit.event(type, fields),
      metrics: app.metrics.response,
      ...(webhook ? { notify: (notice: ResponseNotice) => webhook.send(notice) } : {}),
      onBackgroundError: (err) => app.log.warn({ error: (err as Error).message }, 'automated response failed'),
    })
    app.decorate('responder', responder)
    app.decorate('webhook', webhook)
    app.addHook('onClose', async () => {
      await responder.settled()
      await webhook?.settled()
    })
  },
  { name: 'response', dependencies: ['policy', 'store', 'audit', 'metrics'] },
)
