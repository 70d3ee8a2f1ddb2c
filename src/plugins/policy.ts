import fp from 'fastify-plugin'
import { buildPolicyBundle, type PolicyBundle } from '../engine/policy/bundle.js'
import { PolicySource, type WatchOptions } from '../engine/policy/policy-source.js'
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
  /** Follow the directories and reload settled changes; undefined: only SIGHUP and the API reload. */
  watch?: WatchOptions
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
      const source = await PolicySource.open({ dir, build: buildPolicyBundle, now: opts.now })
      warnOnFallback(role, source.current)
      source.on('reload', (result, bundle) => {
        if (result.ok) app.log.info({ policy: role, policyVersion: result.version, changed: result.changed }, 'policy reloaded')
        else app.log.error({ policy: role, error: result.error }, 'policy reload rejected; previous policy still active')
        if (result.ok && result.changed) warnOnFallback(role, bundle)
      })
      source.on('watch', (status) => {
        if (status.state === 'watching') app.log.info({ policy: role, dir }, 'policy directory watched')
        else app.log.warn({ policy: role, dir, state: status.state, reason: status.reason }, 'policy directory not watched; the last good policy keeps answering')
      })
      if (opts.watch !== undefined) source.watch(opts.watch)
      app.addHook('onClose', () => source.close())
      return source
    }
    app.decorate('policy', await open(opts.dir, 'active'))
    app.decorate('shadowPolicy', opts.shadowDir === undefined ? undefined : await open(opts.shadowDir, 'shadow'))
  },
  { name: 'policy' },
)
