import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config/config.js'
import { exposureWarning } from './config/exposure.js'
import { createGeoipLookup } from './engine/risk/geo.js'
import { PolicyFileError } from './engine/policy/policy-files.js'
import { GeoipDataError } from './engine/risk/geoip-data.js'
import { TokenVerifierConfigError } from './identity/token-verifier.js'
import { PACKAGE_VERSION } from './package-info.js'
import { startTracing } from './tracing/index.js'

/** Process entry: configuration, app, listen, and the signals an orchestrator sends. */
async function main(): Promise<void> {
  const config = loadConfig()
  // The geolocation index loads (and the data files are checked) before the port opens, so that the first decision does not pay for it.
  const geo = createGeoipLookup({ dataDir: config.geoipDataDir })
  geo.warm()
  const tracing = await startTracing(process.env, PACKAGE_VERSION)
  const app = await buildApp({ config, watchPolicies: true, geo, ...(tracing ? { tracing } : {}) })
  if (tracing) app.log.info({ otlpTraces: tracing.target }, 'OpenTelemetry tracing on')

  process.on('SIGHUP', () => {
    app.log.info('SIGHUP: reloading policy')
    void app.policy.reload()
  })

  let closing = false
  const shutdown = (signal: string) => {
    if (closing) return
    closing = true
    app.lifecycle.draining = true
    app.log.info({ signal, drainDelayMs: config.drainDelayMs }, 'shutting down: readiness fails, requests are still served')
    setTimeout(() => {
      app.log.info({ signal }, 'shutting down: finishing in-flight requests')
      const timer = setTimeout(() => {
        app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting')
        process.exit(1)
      }, config.shutdownTimeoutMs)
      timer.unref()
      app.close().then(
        () => process.exit(0),
        (err: unknown) => {
          app.log.error({ err }, 'error while shutting down')
          process.exit(1)
        },
      )
    }, config.drainDelayMs)
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))

  await app.listen({ port: config.port, host: config.host })
  const exposed = exposureWarning(config)
  if (exposed) app.log.warn({ decideAuth: config.decideAuth, host: config.host }, exposed)
}

main().catch((err: unknown) => {
  // Start-up problems are operator errors: one line naming the variable or file, no stack.
  if (err instanceof ConfigError || err instanceof PolicyFileError || err instanceof TokenVerifierConfigError || err instanceof GeoipDataError) {
    process.stderr.write(`pdp: cannot start: ${err.message}\n`)
  } else {
    process.stderr.write(`pdp: cannot start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  }
  process.exit(1)
})
