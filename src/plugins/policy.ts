import fp from 'fastify-plugin'
import { loadPolicyBundle, type PolicyBundle } from '../engine/policy/bundle.js'
import { PolicySource } from '../engine/policy/policy-source.js'
import type { Clock } from '../engine/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    policy: PolicySource
  }
}

export interface PolicyPluginOptions {
  dir: string
  now: Clock
  /** Reload on file changes, after this many quiet milliseconds; undefined disables watching. */
  watchDebounceMs?: number
}

/** Loads the policy directory (start-up fails on a broken policy) and owns the watcher. */
export default fp<PolicyPluginOptions>(
  async (app, opts) => {
    const source = await PolicySource.open({
      dir: opts.dir,
      load: loadPolicyBundle,
      now: opts.now,
    })
    // Once per policy version: a reload of unchanged files does not repeat the warning.
    const warnOnFallback = (bundle: PolicyBundle) => {
      const reason = bundle.evaluator.fallbackReason
      if (reason !== undefined) app.log.warn({ policyVersion: bundle.version, reason }, 'policy evaluated by node-casbin, not the indexed evaluator')
    }
    warnOnFallback(source.current)
    source.on('reload', (result, bundle) => {
      if (result.ok) app.log.info({ policyVersion: result.version, changed: result.changed }, 'policy reloaded')
      else app.log.error({ error: result.error }, 'policy reload rejected; previous policy still active')
      if (result.ok && result.changed) warnOnFallback(bundle)
    })
    if (opts.watchDebounceMs !== undefined) source.watch(opts.watchDebounceMs)
    app.decorate('policy', source)
    app.addHook('onClose', () => source.close())
  },
  { name: 'policy' },
)
