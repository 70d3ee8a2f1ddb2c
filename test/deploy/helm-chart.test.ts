import t from 'tap'
import { EventEmitter } from 'node:events'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { parse, parseDocument, isMap, isScalar, type YAMLMap } from 'yaml'
import { VARIABLES } from '../../src/config/config.js'
import type { PolicySource } from '../../src/engine/policy/policy-source.js'
import { REASON_CODES } from '../../src/engine/types.js'
import { createPrometheusMetrics } from '../../src/metrics/prometheus.js'
import { ROOT } from '../helpers/build.js'
import { DOCKERFILE, parseDockerfile } from './dockerfile.js'
import { actions, hasPath, unbalanced, valuesUses } from './go-template.js'

const CHART = join(ROOT, 'helm/pdp')
const read = (path: string) => readFileSync(join(CHART, path), 'utf8')
const templateFiles = readdirSync(join(CHART, 'templates')).sort()
const templates = Object.fromEntries(templateFiles.map((f) => [f, read(`templates/${f}`)]))
const values = parse(read('values.yaml')) as Record<string, any>
const dashboard = JSON.parse(read('dashboards/zt-pdp.json')) as { uid: string; title: string; panels: { id: number; title: string; targets: { expr: string }[] }[] }

/** Variables added by a concurrent change; the chart wires them already. */
const WEBHOOK_VARIABLES = ['PDP_WEBHOOK_URL', 'PDP_WEBHOOK_SECRET']
const KNOWN_VARIABLES = new Set([...Object.values(VARIABLES).map((v) => v.name), ...WEBHOOK_VARIABLES])

/** Series names the service exports: its own and prom-client's defaults, with a histogram's suffixes. */
async function exportedSeries(): Promise<Set<string>> {
  const names = new Set<string>()
  for (const metric of await createPrometheusMetrics().registry.getMetricsAsJSON()) {
    names.add(metric.name)
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix)
  }
  return names
}

/** Metric names in a PromQL expression: identifiers followed by a label matcher or a range. */
const metricNames = (expr: string) => [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)/g)].map((m) => m[1]!)

t.test('the template scanner', async (t) => {
  t.test('finds actions, skipping comments and strings that contain delimiters', async (t) => {
    const found = actions('a {{- /* {{ if */ -}} {{ "{{ x }}" }} {{- if .Values.a -}}\n{{ end }}')
    t.same(
      found.map((a) => a.text),
      ['"{{ x }}"', 'if .Values.a', 'end'],
    )
    t.equal(found[2]!.line, 2)
  })
  t.test('reports blocks that do not balance', async (t) => {
    t.same(unbalanced(actions('{{ if .a }}{{ with .b }}{{ end }}{{ end }}{{ define "x" }}{{ range . }}{{ else }}{{ end }}{{ end }}')), [])
    t.match(unbalanced(actions('{{ if .a }}\n{{ range .b }}{{ end }}')), [/line 1: "if \.a" is never closed/])
    t.match(unbalanced(actions('{{ end }}')), [/end without a block/])
    t.match(unbalanced(actions('{{ else }}')), [/else outside/])
  })
  t.test('follows with scopes and variables to values paths', async (t) => {
    const { uses, wholeObjects } = valuesUses(
      actions(
        '{{ .Values.a.b }}{{ $.Values.c }}{{ with .Values.s.r }}{{ .name }}{{ toYaml . }}{{ else }}{{ .Release.Name }}{{ end }}' +
          '{{ $p := .Values.p }}{{ $p.q.r }}{{ range .Values.list }}{{ .x }}{{ end }}{{ toYaml .Values.res }}{{ .Files.Get "x.y" }}',
      ),
    )
    t.same(
      uses.map((u) => u.path),
      ['a.b', 'c', 's.r', 's.r.name', 'p', 'p.q.r', 'list', 'res'],
    )
    t.same([...wholeObjects].sort(), ['res', 's.r'])
  })
  t.test('hasPath accepts empty leaves and refuses missing keys', async (t) => {
    t.ok(hasPath({ a: { b: '' } }, 'a.b'))
    t.ok(hasPath({ a: { b: null } }, 'a.b'))
    t.notOk(hasPath({ a: { b: 1 } }, 'a.c'))
    t.notOk(hasPath({ a: 'x' }, 'a.length'))
  })
})

t.test('Chart.yaml: a v2 application chart whose appVersion is the package version', async (t) => {
  const chart = parse(read('Chart.yaml')) as Record<string, string>
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  t.match(chart, { apiVersion: 'v2', name: 'pdp', type: 'application' })
  t.match(chart.version, /^\d+\.\d+\.\d+$/)
  t.equal(chart.appVersion, pkg.version)
})

t.test('every template action balances', async (t) => {
  for (const [file, source] of Object.entries(templates)) t.same(unbalanced(actions(source)), [], file)
})

t.test('every .Values path a template reads exists in values.yaml', async (t) => {
  let checked = 0
  for (const [file, source] of Object.entries(templates)) {
    for (const use of valuesUses(actions(source)).uses) {
      checked++
      t.ok(hasPath(values, use.path), `${file}:${use.line}: .Values.${use.path}`)
    }
  }
  t.ok(checked > 80, `${checked} uses checked`)
})

t.test('values.yaml documents every value with a comment', async (t) => {
  const wholeObjects = new Set(Object.values(templates).flatMap((source) => [...valuesUses(actions(source)).wholeObjects]))
  const doc = parseDocument(read('values.yaml'))
  const missing: string[] = []
  // yaml attaches the comment above a map's first key to the map itself.
  const walk = (map: YAMLMap, prefix: string) => {
    map.items.forEach((pair, index) => {
      if (!isScalar(pair.key)) return
      const path = prefix + String(pair.key.value)
      const comment = pair.key.commentBefore ?? (index === 0 ? map.commentBefore : undefined)
      const nested = isMap(pair.value) && pair.value.items.length > 0 && !wholeObjects.has(path)
      if (nested) walk(pair.value as YAMLMap, `${path}.`)
      else if (!comment?.trim()) missing.push(path)
    })
  }
  walk(doc.contents as YAMLMap, '')
  t.same(missing, [], 'values without a comment')
  t.ok(wholeObjects.has('resources') && wholeObjects.has('securityContext'), 'Kubernetes objects passed through whole')
})

t.test('the Deployment keeps the hardening, the probes and the writable /tmp', async (t) => {
  const deployment = templates['deployment.yaml']!
  t.match(deployment, /securityContext:\n\s+\{\{- toYaml \.Values\.podSecurityContext \| nindent 8 \}\}/)
  t.match(deployment, /securityContext:\n\s+\{\{- toYaml \.Values\.securityContext \| nindent 12 \}\}/)
  t.match(values.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
  t.equal(values.podSecurityContext.runAsNonRoot, true)

  const user = parseDockerfile(DOCKERFILE).at(-1)!.instructions.filter((i) => i.keyword === 'USER').at(-1)!.args
  t.equal(String(values.podSecurityContext.runAsUser), user.split(':')[0], "runAsUser is the image's USER")

  t.match(deployment, /livenessProbe:\n\s+httpGet:\n\s+path: \/healthz\n\s+port: http/)
  t.match(deployment, /readinessProbe:\n\s+httpGet:\n\s+path: \/readyz\n\s+port: http/)
  t.match(deployment, /- name: tmp\n\s+mountPath: \/tmp/)
  t.match(deployment, /- name: tmp\n\s+emptyDir:/)
  t.match(deployment, /resources:\n\s+\{\{- toYaml \.Values\.resources/)
  t.match(deployment, /- name: HOST\n\s+value: "0\.0\.0\.0"/)
  t.match(deployment, /- name: PDP_POLICY_DIR\n\s+value: \{\{ \.Values\.policy\.mountPath \| quote \}\}/)
  t.match(deployment, /mountPath: \{\{ \.Values\.policy\.mountPath \}\}\n\s+readOnly: true/)
})

t.test('the chart sets only variables the service reads, secrets only from Secret references', async (t) => {
  const deployment = templates['deployment.yaml']!
  const names = [
    ...[...deployment.matchAll(/- name: ([A-Z][A-Z0-9_]*)\s*$/gm)].map((m) => m[1]!),
    ...Object.keys(values.env),
    ...(values.extraEnv as { name: string }[]).map((e) => e.name),
  ]
  t.ok(names.length > 10)
  for (const name of names) t.ok(KNOWN_VARIABLES.has(name), `${name} is read by src/config/config.ts`)

  for (const secret of ['REDIS_URL', 'PDP_ADMIN_TOKEN', 'PDP_WEBHOOK_SECRET']) {
    t.match(deployment, new RegExp(`- name: ${secret}\\n\\s+valueFrom:\\n\\s+secretKeyRef:`), `${secret} from a Secret`)
    t.notOk(secret in values.env, `${secret} never a plain value`)
  }
  t.match(deployment, /- name: PDP_WEBHOOK_URL\n/)
})

t.test('the policy ConfigMap embeds the bundled example policies, and changes roll the pods', async (t) => {
  // The policy files, not the test suites beside them: a ConfigMap is flat, and the PDP never reads tests/.
  const repo = readdirSync(join(ROOT, 'policies'), { withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => entry.name)
    .sort()
  t.same(readdirSync(join(CHART, 'policies')).sort(), repo)
  for (const file of repo) t.equal(read(`policies/${file}`), readFileSync(join(ROOT, 'policies', file), 'utf8'), `${file} is the same as policies/${file}`)

  t.match(templates['configmap-policy.yaml'], /\.Files\.Glob "policies\/\*"/)
  t.match(templates['configmap-policy.yaml'], /if not \.Values\.policy\.existingConfigMap/)
  t.match(templates['deployment.yaml'], /checksum\/policy: \{\{ include \(print \$\.Template\.BasePath "\/configmap-policy\.yaml"\) \. \| sha256sum \}\}/)
})

t.test('includes and files the templates name exist', async (t) => {
  const defined = new Set(Object.values(templates).flatMap((s) => actions(s).flatMap((a) => /^define "([^"]+)"/.exec(a.text)?.[1] ?? [])))
  for (const [file, source] of Object.entries(templates)) {
    for (const a of actions(source)) {
      for (const m of a.text.matchAll(/\binclude "([^"]+)"/g)) t.ok(defined.has(m[1]!), `${file}: include "${m[1]}"`)
      for (const m of a.text.matchAll(/\.Files\.Get "([^"]+)"/g)) t.ok(existsSync(join(CHART, m[1]!)), `${file}: ${m[1]}`)
      for (const m of a.text.matchAll(/\.Files\.Glob "([^"*]+)\*"/g)) t.ok(existsSync(join(CHART, m[1]!)), `${file}: ${m[1]}`)
    }
  }
})

t.test('the chart has every resource kind it promises', async (t) => {
  const kinds = Object.values(templates).flatMap((s) => [...s.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]!))
  for (const kind of ['Deployment', 'Service', 'ConfigMap', 'ServiceAccount', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy', 'ServiceMonitor', 'PrometheusRule']) {
    t.ok(kinds.includes(kind), kind)
  }
  t.ok(templateFiles.includes('NOTES.txt') && templateFiles.includes('_helpers.tpl'))
  const policy = templates['networkpolicy.yaml']!
  t.match(policy, /policyTypes:\n\s+- Ingress\n\s+- Egress/)
  t.match(policy, /protocol: UDP/)
  t.equal(values.dashboard.labelKey, 'grafana_dashboard')
})

t.test('the PrometheusRule alerts on series the service exports, with label values it uses', async (t) => {
  const rule = templates['prometheusrule.yaml']!
  const exprs = [...rule.matchAll(/expr: \|\n((?:\s{12}.*\n)+)/g)].map((m) => m[1]!)
  t.equal(exprs.length, 4, 'four alerts')
  const series = await exportedSeries()
  const used = exprs.flatMap(metricNames)
  for (const name of used) t.ok(series.has(name), `${name} is exported`)
  for (const name of ['pdp_decisions_total', 'pdp_decision_duration_seconds_bucket', 'pdp_policy_reloads_total', 'pdp_store_errors_total']) {
    t.ok(used.includes(name), `an alert reads ${name}`)
  }

  const reasons = /reason=~"([^"]+)"/.exec(rule)![1]!.split('|')
  for (const reason of reasons) t.ok((REASON_CODES as readonly string[]).includes(reason), `reason ${reason} exists`)

  // A rejected reload counts under the label value the alert selects.
  const metrics = createPrometheusMetrics()
  const source = Object.assign(new EventEmitter(), { current: { evaluator: { ruleCount: 3 } } })
  metrics.watchPolicy(source as unknown as PolicySource)
  source.emit('reload', { ok: false, error: 'policy.csv:1: bad' }, source.current)
  const reloads = await metrics.registry.getSingleMetric('pdp_policy_reloads_total')!.get()
  const selected = /result="([^"]+)"/.exec(rule)![1]
  t.same(
    reloads.values.filter((v) => v.labels.result === selected).map((v) => v.value),
    [1],
  )
})

t.test('the Grafana dashboard parses and shows the Operations metrics', async (t) => {
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

  t.match(templates['dashboard-configmap.yaml'], /\.Files\.Get "dashboards\/zt-pdp\.json"/)
})
