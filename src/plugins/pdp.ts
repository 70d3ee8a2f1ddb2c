import fp from 'fastify-plugin'
import { createPdp, type Pdp } from '../engine/pdp.js'
import type { Clock } from '../engine/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    pdp: Pdp
  }
}

export interface PdpPluginOptions {
  now: Clock
  defaultTenant: string
}

/** The decision engine, assembled from the collaborators other plugins own. */
export default fp<PdpPluginOptions>(
  async (app, opts) => {
    app.decorate(
      'pdp',
      createPdp({ policy: app.policy, now: opts.now, defaultTenant: opts.defaultTenant, decisionLog: app.audit, metrics: app.metrics }),
    )
  },
  { name: 'pdp', dependencies: ['policy', 'audit', 'metrics'] },
)
