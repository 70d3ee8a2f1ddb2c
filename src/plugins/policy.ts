import fp from 'fastify-plugin'
import { loadPolicyBundle } from '../engine/policy/bundle.js'
import { PolicySource } from '../engine/policy/policy-source.js'
import type { Clock } from '../engine/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    policy: PolicySource
    /** The candidate policy of a shadow rollout, when PDP_SHADOW_POLICY_DIR is set. */
    shadowPolicy: PolicySource | undefined
  }
}

export interface PolicyPluginOptions {
  dir: string
  /** A candidate policy directory evaluated beside the active one (shadow rollout). */
  shadowDir?: string
  now: Clock
  /** Reload on file changes, after this many quiet milliseconds; undefined disables watching. */
  watchDebounceMs?: number
}

/** Loads the policy directory (start-up fails on a broken policy) and owns the watcher. */
export default fp<PolicyPluginOptions>(
  async (app, opts) => {
    const open = async (dir: string, role: 'active' | 'shadow') => {
      const source = await PolicySource.open({ dir, load: loadPolicyBundle, now: opts.now })
      source.on('reload', (result) => {
        if (result.ok) app.log.info({ policy: role, policyVersion: result.version, changed: result.changed }, 'policy reloaded')
        else app.log.error({ policy: role, error: result.error }, 'policy reload rejected; previous policy still active')
      })
      if (opts.watchDebounceMs !== undefined) source.watch(opts.watchDebounceMs)
      app.addHook('onClose', () => source.close())
      return source
    }
    app.decorate('policy', await open(opts.dir, 'active'))
    app.decorate('shadowPolicy', opts.shadowDir === undefined ? undefined : await open(opts.shadowDir, 'shadow'))
  },
  { name: 'policy' },
)
