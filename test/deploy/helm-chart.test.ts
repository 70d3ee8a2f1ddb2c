import t, { type Test } from 'tap'
import { EventEmitter } from 'node:events'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, parseAllDocuments, parseDocument, isMap, isScalar, type YAMLMap } from 'yaml'
import { VARIABLES, loadConfig } from '../../src/config/config.js'
import type { PolicySource } from '../../src/engine/policy/policy-source.js'
import { REASON_CODES } from '../../src/engine/types.js'
import { createPrometheusMetrics } from '../../src/metrics/prometheus.js'
import { ROOT, auditCapture, build, manualClock } from '../helpers/build.js'
import { deadline } from '../helpers/deadline.js'
import { helm, helmFor } from '../helpers/helm.js'
import { AUDIENCE, ISSUER, createIssuer } from '../helpers/tokens.js'
import { DOCKERFILE, parseDockerfile } from './dockerfile.js'

/**
 * The chart through the real Helm (see test/helpers/helm.ts): `helm lint` and `helm template` with the values an
 * operator would pass, and the rendered objects checked as objects.
 */
const CHART = join(ROOT, 'helm/pdp')
const read = (path: string) => readFileSync(join(CHART, path), 'utf8')
const values = parse(read('values.yaml')) as Record<string, any>
const dashboard = JSON.parse(read('dashboards/zt-pdp.json')) as { uid: string; title: string; panels: { id: number; title: string; targets: { expr: string }[] }[] }
const KNOWN_VARIABLES = new Set(Object.values(VARIABLES).map((v) => v.name))

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> }
type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }

/** Scaled out: Redis from a Secret, the autoscaler on. */
const REDIS = {
  secrets: { redisUrl: { name: 'pdp-redis' }, adminToken: { name: 'pdp-admin' } },
  autoscaling: { enabled: true },
  networkPolicy: { egress: { redis: { namespace: 'data', podLabels: { 'app.kubernetes.io/name': 'redis' } } } },
}
/** Redis Sentinel: the sentinels listed, REDIS_URL giving credentials only, three fixed replicas. */
const SENTINEL = {
  replicaCount: 3,
  secrets: { redisUrl: { name: 'pdp-redis' } },
  extraEnv: [
    { name: 'PDP_REDIS_SENTINELS', value: 'sentinel-0.data.svc:26379,sentinel-1.data.svc:26379,sentinel-2.data.svc:26379' },
    { name: 'PDP_REDIS_SENTINEL_MASTER', value: 'pdp' },
  ],
  networkPolicy: { egress: { redis: { namespace: 'data', ports: [6379, 26379] } } },
}

const dir = mkdtempSync(join(tmpdir(), 'pdp-helm-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let files = 0
/** A values file for helm's -f (JSON is YAML). */
function valuesFile(overrides: object): string {
  const path = join(dir, `values-${files++}.yaml`)
  writeFileSync(path, JSON.stringify(overrides))
  return path
}

const binary = helmFor(t)

/** `helm template` with these values; the parsed objects, or helm's error. */
function template(overrides: object = {}): { objects: K8sObject[]; error?: string } {
  const run = helm(binary!, ['template', 'pdp', CHART, '--namespace', 'pdp', '-f', valuesFile(overrides)])
  if (run.status !== 0) return { objects: [], error: run.stderr }
  const objects = parseAllDocuments(run.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw doc.errors[0]
      return doc.toJS() as K8sObject | null
    })
    .filter((o): o is K8sObject => o !== null)
  return { objects }
}

function rendered(t: Test, overrides: object = {}): K8sObject[] {
  const { objects, error } = template(overrides)
  t.equal(error, undefined, 'helm template succeeds')
  return objects
}

const ofKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind)
const one = (objects: K8sObject[], kind: string) => {
  const found = ofKind(objects, kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, got ${found.length}`)
  return found[0]!
}
const container = (objects: K8sObject[]) => one(objects, 'Deployment').spec.template.spec.containers[0]
const envOf = (objects: K8sObject[]) => container(objects).env as EnvVar[]
const envValue = (objects: K8sObject[], name: string) => envOf(objects).find((e) => e.name === name)

/** Series names the service exports: its own and prom-client's defaults, with a histogram's suffixes. */
async function exportedSeries(): Promise<Set<string>> {
  const names = new Set<string>()
  const metrics = createPrometheusMetrics()
  // As the metrics plugin does: the decision log's health is read from the audit log.
  metrics.watchDecisionLog(() => ({ failing: false, writeErrors: 0, dropped: 0 }))
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    names.add(metric.name)
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix)
  }
  return names
}

/** Metric names in a PromQL expression: identifiers followed by a label matcher or a range. */
const metricNames = (expr: string) => [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)/g)].map((m) => m[1]!)

if (binary) {
  t.test('helm lint --strict passes with the default, scaled-out and Sentinel values', async (t) => {
    for (const [name, overrides] of Object.entries({ default: {}, redis: REDIS, sentinel: SENTINEL })) {
      const run = helm(binary, ['lint', '--strict', CHART, '-f', valuesFile(overrides)])
      t.equal(run.status, 0, `${name}: ${run.stdout}${run.stderr}`)
    }
  })

  t.test('the default values install one replica with the embedded store', async (t) => {
    const objects = rendered(t)
    const deployment = one(objects, 'Deployment')
    t.equal(deployment.spec.replicas, 1)
    t.same(ofKind(objects, 'HorizontalPodAutoscaler'), [], 'no autoscaler without Redis')
    t.same(ofKind(objects, 'PodDisruptionBudget'), [], 'no PDB for a single replica (it would only block drains)')
    t.equal(envValue(objects, 'REDIS_URL'), undefined, 'embedded store')
    t.equal(envValue(objects, 'PDP_DECIDE_AUTH')?.value, 'token', '/decide callers authenticate')
    t.same(objects.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment', 'NetworkPolicy', 'Service', 'ServiceAccount'])

    // The environment the pod gets is one the process starts with.
    const env = Object.fromEntries(envOf(objects).map((e) => [e.name, e.value!]))
    const config = loadConfig(env)
    t.equal(config.port, values.containerPort)
    t.equal(config.host, '0.0.0.0')
  })

  t.test('scaled out with Redis: an autoscaler over the Deployment, REDIS_URL from the Secret, a PDB', async (t) => {
    const objects = rendered(t, REDIS)
    const deployment = one(objects, 'Deployment')
    t.notOk('replicas' in deployment.spec, 'the autoscaler owns the replica count')
    const hpa = one(objects, 'HorizontalPodAutoscaler')
    t.match(hpa.spec, {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name },
      minReplicas: values.autoscaling.minReplicas,
      maxReplicas: values.autoscaling.maxReplicas,
    })
    t.ok(hpa.spec.minReplicas > 1)
    t.same(envValue(objects, 'REDIS_URL')?.valueFrom, { secretKeyRef: { name: 'pdp-redis', key: 'redis-url' } })
    t.same(envValue(objects, 'PDP_ADMIN_TOKEN')?.valueFrom, { secretKeyRef: { name: 'pdp-admin', key: 'admin-token' } })
    const pdb = one(objects, 'PodDisruptionBudget')
    t.equal(pdb.spec.minAvailable, 1)
    t.same(pdb.spec.selector.matchLabels, deployment.spec.selector.matchLabels)
  })

  t.test('Sentinel: the sentinels reach the process, REDIS_URL still from the Secret', async (t) => {
    const objects = rendered(t, SENTINEL)
    t.equal(one(objects, 'Deployment').spec.replicas, 3)
    t.same(ofKind(objects, 'HorizontalPodAutoscaler'), [])
    t.equal(envValue(objects, 'PDP_REDIS_SENTINELS')?.value, SENTINEL.extraEnv[0]!.value)
    t.equal(envValue(objects, 'PDP_REDIS_SENTINEL_MASTER')?.value, 'pdp')
    t.ok(envValue(objects, 'REDIS_URL')?.valueFrom?.secretKeyRef)
    const env = Object.fromEntries(envOf(objects).flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])))
    const config = loadConfig({ ...env, REDIS_URL: 'redis://:s3cret@unused:6379/0' })
    t.same(config.redisSentinels, [
      { host: 'sentinel-0.data.svc', port: 26379 },
      { host: 'sentinel-1.data.svc', port: 26379 },
      { host: 'sentinel-2.data.svc', port: 26379 },
    ])
  })

  t.test('more than one replica without Redis is refused with the reason', async (t) => {
    for (const overrides of [{ replicaCount: 2 }, { autoscaling: { enabled: true } }]) {
      const { error } = template(overrides)
      t.match(error, /more than one replica needs shared state: set secrets\.redisUrl\.name/, JSON.stringify(overrides))
    }
  })

  t.test('values.schema.json: helm refuses values of the wrong type, unknown keys and secrets as plain values', async (t) => {
    const refused: [object, RegExp][] = [
      [{ replicaCount: 'two' }, /replicaCount.*want integer/],
      [{ autoscaling: { enabled: 'yes' } }, /autoscaling\/enabled.*want boolean/],
      [{ replicas: 2 }, /additional properties 'replicas' not allowed/],
      [{ env: { REDIS_URL: 'redis://:pw@redis:6379' } }, /invalid propertyName 'REDIS_URL'/],
      [{ env: { PDP_METRICS_PORT: '9000' } }, /invalid propertyName 'PDP_METRICS_PORT'/],
      [{ metrics: { port: 'metrics' } }, /metrics\/port.*want integer/],
      [{ trustedProxies: ['everyone'] }, /trustedProxies\/0.*does not match pattern/],
      [{ networkPolicy: { egress: { redis: { ports: [70000] } } } }, /redis\/ports\/0.*maximum/],
      [{ terminationGracePeriodSeconds: '30s' }, /terminationGracePeriodSeconds.*want integer/],
    ]
    for (const [overrides, reason] of refused) {
      const { error } = template(overrides)
      t.match(error, /values don't meet the specifications of the schema/, JSON.stringify(overrides))
      t.match(error, reason)
    }
    const lint = helm(binary, ['lint', CHART, '-f', valuesFile({ replicaCount: 'two' })])
    t.not(lint.status, 0, 'helm lint refuses them too')
  })

  t.test('trusted proxies: with the ingress pods\' CIDR set, a gateway pod\'s X-Forwarded-For is believed and no one else\'s', async (t) => {
    const issuer = await createIssuer()
    const clock = manualClock()
    const GATEWAY_POD = '10.244.3.7'
    const OTHER_POD = '10.245.0.9'
    const CLIENT = '81.2.69.142'

    /** The ip a forward-auth decision sees when `peer` forwards a request claiming to come from CLIENT. */
    async function seenIp(t: Test, trustedProxies: string, peer: string): Promise<unknown> {
      const capture = auditCapture()
      const env = { PDP_ISSUER: ISSUER, PDP_AUDIENCE: AUDIENCE, PDP_JWKS_FILE: await issuer.jwksFile(), PDP_TRUSTED_PROXIES: trustedProxies }
      const pdp = await build(t, { env, now: clock.now, auditStream: capture.stream })
      const bearer = await issuer.sign({ sub: 'alice', tenant: 'acme', auth_time: Math.floor(clock.now() / 1000) - 60, amr: ['pwd', 'otp'] }, { nowMs: clock.now() })
      await pdp.inject({
        method: 'GET',
        url: '/authz/forward',
        remoteAddress: peer,
        headers: { authorization: `Bearer ${bearer}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/documents/d1', 'x-forwarded-for': CLIENT },
      })
      return (capture.lines.find((l) => l.type === 'decision') as { input: { context: { ip: unknown } } }).input.context.ip
    }

    // The default believes loopback only: behind an in-cluster ingress controller every decision sees the controller.
    const byDefault = envValue(rendered(t), 'PDP_TRUSTED_PROXIES')!.value!
    t.equal(await seenIp(t, byDefault, GATEWAY_POD), GATEWAY_POD, 'default: the gateway pod\'s X-Forwarded-For is not believed')

    const configured = envValue(rendered(t, { trustedProxies: ['10.244.3.0/24'] }), 'PDP_TRUSTED_PROXIES')!.value!
    t.equal(configured, '10.244.3.0/24')
    t.equal(await seenIp(t, configured, GATEWAY_POD), CLIENT, 'from the ingress pod CIDR it is believed')
    t.equal(await seenIp(t, configured, OTHER_POD), OTHER_POD, 'from any other pod it is not')
  })

  t.test('rollouts: a startup probe, a preStop drain the image can run, and a grace period that covers both', async (t) => {
    const objects = rendered(t, { preStopSleepSeconds: 1 })
    const pod = one(objects, 'Deployment').spec.template.spec
    const c = container(objects)
    t.match(c.startupProbe, { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: values.startupProbe.periodSeconds, failureThreshold: values.startupProbe.failureThreshold })
    t.ok(values.startupProbe.periodSeconds * values.startupProbe.failureThreshold >= 40, 'a start of 10 s at 4x slowdown fits')
    t.equal(c.livenessProbe.initialDelaySeconds, 0, 'liveness waits for the startup probe, not a guess')

    // The image has node and nothing else: the hook is a node program, and it waits before exiting cleanly.
    const [command, ...args] = c.lifecycle.preStop.exec.command as string[]
    t.equal(command, 'node')
    const started = process.hrtime.bigint()
    const run = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: deadline(60_000) })
    t.equal(run.status, 0, run.stderr)
    t.ok(Number(process.hrtime.bigint() - started) / 1e6 >= 1000, 'it waits preStopSleepSeconds')

    const shutdownMs = Number(envValue(objects, 'PDP_SHUTDOWN_TIMEOUT_MS')!.value)
    t.ok(pod.terminationGracePeriodSeconds * 1000 >= values.preStopSleepSeconds * 1000 + shutdownMs, 'defaults are consistent')
    const { error } = template({ terminationGracePeriodSeconds: 10, preStopSleepSeconds: 5, env: { PDP_SHUTDOWN_TIMEOUT_MS: '10000' } })
    t.match(error, /terminationGracePeriodSeconds \(10 s\) must cover preStopSleepSeconds \(5 s\) plus env\.PDP_DRAIN_DELAY_MS and env\.PDP_SHUTDOWN_TIMEOUT_MS \(10000 ms together\)/)
    const drained = template({ terminationGracePeriodSeconds: 20, preStopSleepSeconds: 5, env: { PDP_SHUTDOWN_TIMEOUT_MS: '10000', PDP_DRAIN_DELAY_MS: '8000' } })
    t.match(drained.error, /\(18000 ms together\)/, 'a drain delay in env counts too')
    const none = container(rendered(t, { preStopSleepSeconds: 0 }))
    t.equal(none.lifecycle, undefined, 'preStopSleepSeconds 0 leaves the hook out')
  })

  t.test('NetworkPolicy: callers, gateways and monitoring in; DNS, Redis with its sentinels, JWKS, the webhook and the OTLP collector out', async (t) => {
    const policy = one(
      rendered(t, {
        ...SENTINEL,
        webhook: { url: 'https://hooks.example.com/pdp' },
        networkPolicy: {
          ingress: { callerNamespaces: ['shop', 'billing'] },
          egress: {
            redis: { namespace: 'data', podLabels: { app: 'redis' }, ports: [6379, 26379] },
            jwks: { cidrs: ['203.0.113.0/24'] },
            webhook: { namespace: 'hooks' },
            otlp: { namespace: 'monitoring', podLabels: { 'app.kubernetes.io/name': 'otel-collector' } },
          },
        },
      }),
      'NetworkPolicy',
    ).spec
    const namespaces = (rule: { from: { namespaceSelector: { matchLabels: Record<string, string> } }[] }) => rule.from.map((f) => f.namespaceSelector.matchLabels['kubernetes.io/metadata.name'])
    t.equal(policy.ingress.length, 2)
    t.same(namespaces(policy.ingress[0]), ['ingress-nginx', 'shop', 'billing'])
    t.same(namespaces(policy.ingress[1]), ['monitoring'])
    t.same(policy.ingress[0].ports, [{ port: 'http', protocol: 'TCP' }], 'callers and gateways reach the API port')
    t.same(policy.ingress[1].ports, [{ port: 'metrics', protocol: 'TCP' }], 'monitoring reaches the metrics port only')

    t.same(policy.egress, [
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'data' } }, podSelector: { matchLabels: { app: 'redis' } } }],
        ports: [
          { port: 6379, protocol: 'TCP' },
          { port: 26379, protocol: 'TCP' },
        ],
      },
      { to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ port: 443, protocol: 'TCP' }] },
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'hooks' } } }], ports: [{ port: 443, protocol: 'TCP' }] },
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'otel-collector' } } }],
        ports: [{ port: 4318, protocol: 'TCP' }],
      },
    ])

    const closed = one(rendered(t, { networkPolicy: { ingress: { gatewayNamespaces: [], monitoringNamespaces: [] } } }), 'NetworkPolicy').spec
    t.same(closed.ingress, [], 'nothing configured: nothing may connect')
    t.equal(closed.egress.length, 1, 'by default only DNS goes out')
  })

  t.test('metrics port: the process serves /metrics on its own port, which the NetworkPolicy, Service, ServiceMonitor and annotations name', async (t) => {
    const objects = rendered(t, { serviceMonitor: { enabled: true } })
    const ports = container(objects).ports as { name: string; containerPort: number }[]
    const portOf = (name: string) => ports.find((p) => p.name === name)?.containerPort
    t.equal(portOf('metrics'), values.metrics.port)
    t.not(portOf('metrics'), portOf('http'))
    // The process reads the rendered variables as the pod would: /metrics on PDP_METRICS_PORT, the API on PORT.
    const renderedEnv = Object.fromEntries(envOf(objects).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]))
    const config = loadConfig(renderedEnv)
    t.equal(config.metricsPort, portOf('metrics'), 'PDP_METRICS_PORT is the container port named metrics')
    t.equal(config.port, portOf('http'), 'PORT is the container port named http')

    const monitoringRule = (one(objects, 'NetworkPolicy').spec.ingress as { ports: { port: string }[] }[]).at(-1)!
    t.same(monitoringRule.ports.map((p) => p.port), ['metrics'])
    const service = one(objects, 'Service').spec.ports as { name: string; port: number; targetPort: string }[]
    t.match(service, [{ name: 'http', targetPort: 'http' }, { name: 'metrics', port: values.metrics.port, targetPort: 'metrics' }])
    t.match(one(objects, 'ServiceMonitor').spec.endpoints, [{ port: 'metrics', path: '/metrics' }], 'the ServiceMonitor scrapes the Service\'s metrics port')
    t.match(one(objects, 'Deployment').spec.template.metadata.annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(values.metrics.port), 'prometheus.io/path': '/metrics' })

    const noAnnotations = one(rendered(t, { metrics: { scrapeAnnotations: false } }), 'Deployment').spec.template.metadata.annotations
    t.equal(noAnnotations['prometheus.io/scrape'], undefined, 'scrapeAnnotations false leaves them out')
    const clash = template({ metrics: { port: values.containerPort } })
    t.match(clash.error, /metrics\.port must differ from containerPort/, 'one port for both is refused')

    // Tracing is set through env like any plain setting; the OTEL_* names pass through to the process as they are.
    const traced = rendered(t, { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.monitoring.svc:4318' } })
    t.equal(envValue(traced, 'OTEL_EXPORTER_OTLP_ENDPOINT')?.value, 'http://otel-collector.monitoring.svc:4318')
  })

  t.test('the Deployment keeps the hardening, the probes and the writable /tmp', async (t) => {
    const objects = rendered(t)
    const pod = one(objects, 'Deployment').spec.template.spec
    const c = container(objects)
    t.same(pod.securityContext, values.podSecurityContext)
    t.same(c.securityContext, values.securityContext)
    t.match(c.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
    t.equal(pod.automountServiceAccountToken, false)
    const user = parseDockerfile(DOCKERFILE).at(-1)!.instructions.filter((i) => i.keyword === 'USER').at(-1)!.args
    t.equal(String(pod.securityContext.runAsUser), user.split(':')[0], "runAsUser is the image's USER")

    t.match(c.livenessProbe, { httpGet: { path: '/healthz', port: 'http' } })
    t.match(c.readinessProbe, { httpGet: { path: '/readyz', port: 'http' } })
    t.same(c.resources, values.resources)
    t.same(c.volumeMounts, [
      { name: 'policies', mountPath: values.policy.mountPath, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ])
    t.same(
      pod.volumes.find((v: { name: string }) => v.name === 'tmp'),
      { name: 'tmp', emptyDir: { sizeLimit: values.tmpSizeLimit } },
    )
    t.equal(envValue(objects, 'PDP_POLICY_DIR')?.value, values.policy.mountPath)
  })

  t.test('the chart sets only variables the service reads, secrets only from Secret references', async (t) => {
    const objects = rendered(t, {
      ...REDIS,
      secrets: { ...REDIS.secrets, webhookSecret: { name: 'pdp-webhook' } },
      webhook: { url: 'https://hooks.example.com/pdp' },
    })
    const env = envOf(objects)
    t.ok(env.length > 10)
    for (const e of env) t.ok(KNOWN_VARIABLES.has(e.name), `${e.name} is read by src/config/config.ts`)
    for (const name of ['REDIS_URL', 'PDP_ADMIN_TOKEN', 'PDP_WEBHOOK_SECRET']) {
      const found = env.filter((e) => e.name === name)
      t.equal(found.length, 1, `${name} once`)
      t.ok(found[0]?.valueFrom?.secretKeyRef, `${name} from a Secret`)
      t.equal(found[0]?.value, undefined, `${name} never a plain value`)
    }
    t.equal(envValue(objects, 'PDP_WEBHOOK_URL')?.value, 'https://hooks.example.com/pdp')
  })

  t.test('the policy ConfigMap holds the bundled example policies, and an existing one replaces it', async (t) => {
    // The policy files, not the test suites beside them: a ConfigMap is flat, and the PDP never reads tests/.
    const repo = readdirSync(join(ROOT, 'policies'), { withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name)
      .sort()
    const objects = rendered(t)
    const configMap = one(objects, 'ConfigMap')
    t.same(Object.keys(configMap.data!).sort(), repo)
    for (const file of repo) t.equal(configMap.data![file], readFileSync(join(ROOT, 'policies', file), 'utf8'), `${file} is policies/${file}`)
    const pod = one(objects, 'Deployment').spec.template.spec
    t.equal(pod.volumes.find((v: { name: string }) => v.name === 'policies').configMap.name, configMap.metadata.name)
    t.match(one(objects, 'Deployment').spec.template.metadata.annotations['checksum/policy'], /^[0-9a-f]{64}$/, 'a policy change rolls the pods')

    const own = rendered(t, { policy: { existingConfigMap: 'my-policies' } })
    t.same(ofKind(own, 'ConfigMap'), [])
    t.equal(one(own, 'Deployment').spec.template.spec.volumes.find((v: { name: string }) => v.name === 'policies').configMap.name, 'my-policies')
  })

  t.test('with everything on, the chart has every resource kind it promises', async (t) => {
    const objects = rendered(t, { ...REDIS, serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, dashboard: { enabled: true } })
    t.same([...new Set(objects.map((o) => o.kind))].sort(), [
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'PrometheusRule',
      'Service',
      'ServiceAccount',
      'ServiceMonitor',
    ])
    const monitor = one(objects, 'ServiceMonitor')
    t.match(monitor.spec.endpoints, [{ port: 'metrics', path: '/metrics' }])
    t.same(monitor.spec.selector.matchLabels, one(objects, 'Service').spec.selector)
    const policy = one(objects, 'NetworkPolicy')
    t.same(policy.spec.policyTypes, ['Ingress', 'Egress'])
  })

  t.test('the PrometheusRule alerts on series the service exports, with label values it uses', async (t) => {
    const objects = rendered(t, { prometheusRule: { enabled: true } })
    const rules = (one(objects, 'PrometheusRule').spec.groups as { rules: { alert: string; expr: string }[] }[]).flatMap((g) => g.rules)
    const series = await exportedSeries()
    const used = rules.flatMap((r) => metricNames(r.expr))
    // `up` is Prometheus's own series for every target.
    for (const name of used) t.ok(name === 'up' || series.has(name), `${name} is exported`)
    t.ok(rules.some((r) => r.alert === 'PdpTargetDown' && metricNames(r.expr).includes('up')), 'an alert for a target that is down')
    for (const name of ['pdp_decisions_total', 'pdp_decision_duration_seconds_bucket', 'pdp_policy_reloads_total', 'pdp_store_errors_total', 'pdp_decision_log_failing']) {
      t.ok(used.includes(name), `an alert reads ${name}`)
    }
    const exprs = rules.map((r) => r.expr).join('\n')
    const reasons = /reason=~"([^"]+)"/.exec(exprs)![1]!.split('|')
    for (const reason of reasons) t.ok((REASON_CODES as readonly string[]).includes(reason), `reason ${reason} exists`)

    // A rejected reload counts under the label value the alert selects.
    const metrics = createPrometheusMetrics()
    const source = Object.assign(new EventEmitter(), { current: { evaluator: { ruleCount: 3 } } })
    metrics.watchPolicy(source as unknown as PolicySource)
    source.emit('reload', { ok: false, error: 'policy.csv:1: bad' }, source.current)
    const reloads = await metrics.registry.getSingleMetric('pdp_policy_reloads_total')!.get()
    const selected = /result="([^"]+)"/.exec(exprs)![1]
    t.same(
      reloads.values.filter((v) => v.labels.result === selected).map((v) => v.value),
      [1],
    )
  })

  t.test('promtool: the PrometheusRule passes check rules, and its alerts fire when they should', async (t) => {
    if (spawnSync('promtool', ['--version'], { stdio: 'ignore' }).error !== undefined) {
      const message = "promtool is not installed (Debian's prometheus package; .ci/run installs it)"
      if (process.env.CI === 'true') t.fail(message)
      else t.skip(message, () => {})
      return
    }
    const rule = one(rendered(t, { prometheusRule: { enabled: true } }), 'PrometheusRule')
    const rulesFile = join(dir, 'rules.yaml')
    writeFileSync(rulesFile, JSON.stringify({ groups: rule.spec.groups }))
    const check = spawnSync('promtool', ['check', 'rules', '--lint=all', '--lint-fatal', rulesFile], { encoding: 'utf8', timeout: 60_000 })
    t.equal(check.status, 0, check.stdout + check.stderr)

    const rules = (rule.spec.groups as { rules: { alert: string; annotations: Record<string, string> }[] }[]).flatMap((g) => g.rules)
    const annotations = (alert: string) => rules.find((r) => r.alert === alert)!.annotations
    const series = 'job="pdp", namespace="pdp"'
    const unitTests = {
      rule_files: [rulesFile],
      evaluation_interval: '1m',
      tests: [
        {
          // Scraped, then down from the third minute on; a policy reload rejected at minute 3.
          interval: '1m',
          input_series: [
            { series: `up{${series}, pod="pdp-a"}`, values: '1 1 0x10' },
            { series: `pdp_policy_reloads_total{${series}, pod="pdp-a", result="failure"}`, values: '0 0 0 1x10' },
            // pdp-b's decision log fails from minute 2 on; pdp-a's never does.
            { series: `pdp_decision_log_failing{${series}, pod="pdp-a"}`, values: '0x12' },
            { series: `pdp_decision_log_failing{${series}, pod="pdp-b"}`, values: '0 0 1x10' },
          ],
          alert_rule_test: [
            { eval_time: '1m', alertname: 'PdpTargetDown', exp_alerts: [] },
            {
              eval_time: '9m',
              alertname: 'PdpTargetDown',
              exp_alerts: [{ exp_labels: { severity: 'warning', job: 'pdp', namespace: 'pdp', pod: 'pdp-a' }, exp_annotations: annotations('PdpTargetDown') }],
            },
            { eval_time: '5m', alertname: 'PdpDecisionLogFailing', exp_alerts: [] },
            {
              eval_time: '9m',
              alertname: 'PdpDecisionLogFailing',
              exp_alerts: [
                {
                  exp_labels: { severity: 'warning', pod: 'pdp-b' },
                  exp_annotations: { ...annotations('PdpDecisionLogFailing'), summary: 'The decision log cannot be written on pdp-b' },
                },
              ],
            },
            {
              eval_time: '5m',
              alertname: 'PdpPolicyReloadFailed',
              exp_alerts: [
                {
                  exp_labels: { severity: 'warning', job: 'pdp', namespace: 'pdp', pod: 'pdp-a', result: 'failure' },
                  exp_annotations: { ...annotations('PdpPolicyReloadFailed'), summary: 'A policy reload was rejected on pdp-a' },
                },
              ],
            },
          ],
        },
        {
          // Nothing scraped at all (a wrong job name, a blocked scrape): the target-down alert still fires.
          interval: '1m',
          input_series: [{ series: 'up{job="something-else", namespace="pdp"}', values: '1x10' }],
          alert_rule_test: [
            {
              eval_time: '9m',
              alertname: 'PdpTargetDown',
              exp_alerts: [{ exp_labels: { severity: 'warning', job: 'pdp', namespace: 'pdp' }, exp_annotations: annotations('PdpTargetDown') }],
            },
          ],
        },
      ],
    }
    const testFile = join(dir, 'rules.test.yaml')
    writeFileSync(testFile, JSON.stringify(unitTests))
    const run = spawnSync('promtool', ['test', 'rules', testFile], { encoding: 'utf8', timeout: 60_000 })
    t.equal(run.status, 0, run.stdout + run.stderr)

    const other = one(rendered(t, { prometheusRule: { enabled: true, job: 'kubernetes-pods' } }), 'PrometheusRule')
    for (const r of (other.spec.groups as { rules: { expr: string }[] }[]).flatMap((g) => g.rules)) {
      t.match(r.expr, /job="kubernetes-pods", namespace="pdp"/, 'prometheusRule.job replaces the Service name')
    }
  })

  t.test('the Grafana dashboard is shipped as it is and shows the Operations metrics', async (t) => {
    const objects = rendered(t, { dashboard: { enabled: true } })
    const configMap = ofKind(objects, 'ConfigMap').find((c) => c.metadata.labels?.[values.dashboard.labelKey] === values.dashboard.labelValue)!
    t.same(JSON.parse(Object.values(configMap.data!)[0]!), dashboard)
    t.equal(values.dashboard.labelKey, 'grafana_dashboard')

    t.ok(dashboard.uid && dashboard.title)
    t.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'unique panel ids')
    const series = await exportedSeries()
    const used = dashboard.panels.flatMap((p) => p.targets.flatMap((target) => metricNames(target.expr)))
    for (const name of used) t.ok(series.has(name), `${name} is exported`)
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const operations = readme.slice(readme.indexOf('### Operations'), readme.indexOf('\n### ', readme.indexOf('### Operations') + 1))
    const listed = [...new Set([...operations.matchAll(/`(pdp_[a-z_]+)/g)].map((m) => m[1]!))]
    t.ok(listed.length >= 8, 'the README lists the metrics')
    for (const name of listed) t.ok(used.some((u) => u === name || u === `${name}_bucket`), `the dashboard shows ${name}`)
  })
}

t.test('Chart.yaml: a v2 application chart whose appVersion is the package version', async (t) => {
  const chart = parse(read('Chart.yaml')) as Record<string, string>
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  t.match(chart, { apiVersion: 'v2', name: 'pdp', type: 'application' })
  t.match(chart.version, /^\d+\.\d+\.\d+$/)
  t.equal(chart.appVersion, pkg.version)
})

t.test('values.yaml documents every value with a comment', async (t) => {
  const doc = parseDocument(read('values.yaml'))
  const missing: string[] = []
  // A key is documented by its own comment, or, for a map, by every key inside it being documented.
  // yaml attaches the comment above a map's first key to the map itself.
  const walk = (map: YAMLMap, prefix: string) => {
    map.items.forEach((pair, index) => {
      if (!isScalar(pair.key)) return
      const path = prefix + String(pair.key.value)
      const comment = pair.key.commentBefore ?? (index === 0 ? map.commentBefore : undefined)
      if (comment?.trim()) return
      if (isMap(pair.value) && pair.value.items.length > 0) walk(pair.value as YAMLMap, `${path}.`)
      else missing.push(path)
    })
  }
  walk(doc.contents as YAMLMap, '')
  t.same(missing, [], 'values without a comment')
})
