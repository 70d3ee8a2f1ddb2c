import fp from 'fastify-plugin'
import { loadPolicyBundle, type PolicyBundle } from '../engine/policy/bundle.js'
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
    // Once per policy version: a reload of unchanged files does not repeat the warning.
    const warnOnFallback = (role: 'active' | 'shadow', bundle: PolicyBundle) => {
      const reason = bundle.evaluator.fallbackReason
      if (reason !== undefined) app.log.warn({ policy: role, policyVersion: bundle.version, reason }, 'policy evaluated by node-casbin, not the indexed evaluator')
    }
    const open = async (dir: string, role: 'active' | 'shadow') => {
      const source = await PolicySource.open({ dir, load: loadPolicyBundle, now: opts.now })
      warnOnFallback(role, source.current)
      source.on('reload', (result, bundle) => {
        if (result.ok) app.log.info({ policy: role, policyVersion: result.version, changed: result.changed }, 'policy reloaded')
        else app.log.error({ policy: role, error: result.error }, 'policy reload rejected; previous policy still active')
        if (result.ok && result.changed) warnOnFallback(role, bundle)
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
