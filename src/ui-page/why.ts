import { api, ApiError } from './api.js'
import { byId, field, fill, h, verdictBadge } from './dom.js'
import { renderExplained } from './render.js'
import { check, type Schema } from './schema-check.js'
import type { ExplainAnswer, Subject } from './types.js'

let schema: Schema | undefined

async function decideSchema(): Promise<Schema> {
  schema ??= (await (await fetch('/ui/assets/decide-schema.json', { credentials: 'omit' })).json()) as Schema
  return schema
}

const input = (id: string, attrs: Record<string, string> = {}) => h('input', { id, type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs })
const select = (id: string, options: [string, string][]) => h('select', { id }, options.map(([value, label]) => h('option', { value }, label)))

/** The form's fields as a /decide body; empty fields are left out. */
function fromForm(): Record<string, unknown> {
  const v = (id: string) => byId<HTMLInputElement>(id).value.trim()
  const subject: Record<string, unknown> = { id: v('f-subject') }
  const roles = v('f-roles').split(',').map((r) => r.trim()).filter(Boolean)
  if (roles.length > 0) subject.roles = roles
  if (v('f-tenant')) subject.tenant = v('f-tenant')
  const resource: Record<string, unknown> = { type: v('f-rtype') }
  if (v('f-rid')) resource.id = v('f-rid')
  if (v('f-owner')) resource.attributes = { owner: v('f-owner') }
  const context: Record<string, unknown> = {}
  if (v('f-ip')) context.ip = v('f-ip')
  if (v('f-device')) {
    const device: Record<string, unknown> = { id: v('f-device') }
    const managed = v('f-managed')
    if (managed !== '') device.managed = managed === 'yes'
    context.device = device
  }
  if (v('f-authage')) context.session = { authTime: Math.floor(Date.now() / 1000) - Number(v('f-authage')) }
  if (v('f-sensitivity')) context.sensitivity = v('f-sensitivity')
  const body: Record<string, unknown> = { subject, action: v('f-action'), resource }
  if (Object.keys(context).length > 0) body.context = context
  return body
}

/** Checks the JSON as it is typed: syntax first, then the /decide schema. */
async function checkJson(): Promise<unknown> {
  const status = byId('json-status')
  const text = byId<HTMLTextAreaElement>('request-json').value
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    status.className = 'error'
    status.textContent = `Not JSON: ${(err as Error).message}`
    return undefined
  }
  const problem = check(await decideSchema(), value)
  if (problem) {
    status.className = 'error'
    status.textContent = `${problem.pointer} ${problem.message}`
    return undefined
  }
  status.className = 'status-ok'
  status.textContent = 'Valid /decide request'
  return value
}

export function syncJson(): void {
  byId<HTMLTextAreaElement>('request-json').value = JSON.stringify(fromForm(), null, 2)
  void checkJson()
}

/** What the Why view currently describes, for explaining it or comparing it in What if. */
export async function currentSubject(): Promise<Subject> {
  const mode = (document.querySelector('input[name=why-mode]:checked') as HTMLInputElement | null)?.value ?? 'form'
  if (mode === 'log') {
    const text = byId<HTMLTextAreaElement>('log-input').value.trim()
    if (text === '') throw new ApiError(400, 'Paste a decision-log line or a decisionId first')
    return text.startsWith('{') ? { logLine: text } : { decisionId: text }
  }
  const request = await checkJson()
  if (request === undefined) throw new ApiError(400, `The request is not valid: ${byId('json-status').textContent ?? ''}`)
  return { request }
}

export function showError(el: HTMLElement, err: unknown): void {
  fill(el, h('p', { class: 'error', role: 'alert' }, err instanceof Error ? err.message : String(err)))
}

export async function explain(): Promise<void> {
  const out = byId('why-result')
  fill(out, h('p', { class: 'muted' }, 'Explaining…'))
  try {
    const subject = await currentSubject()
    const policy = byId<HTMLSelectElement>('why-policy').value
    const answer = await api<ExplainAnswer>('POST', '/admin/explorer/explain', { ...subject, policy })
    fill(
      out,
      h('h2', {}, 'Why'),
      answer.logged
        ? h('p', { 'data-part': 'logged' }, `Logged ${new Date(answer.logged.time).toLocaleString()}: `, verdictBadge(answer.logged.verdict), ` ${answer.logged.reasons.join(', ')}. Decided again now:`)
        : h('p', { class: 'muted' }, `Decided now under the ${answer.policy.role} policy (${answer.policy.revision}); nothing was learnt or logged.`),
      answer.masked.length > 0 ? h('p', { class: 'muted' }, `Redacted in the log, decided as "[redacted]": ${answer.masked.join(', ')}`) : null,
      renderExplained(answer.result),
      h('details', {}, h('summary', {}, 'Request as decided'), h('pre', { class: 'mono' }, JSON.stringify(answer.request, null, 2))),
    )
  } catch (err) {
    showError(out, err)
  }
}

/** Explains a decision still in memory (from the live view). */
export function explainDecision(decisionId: string): Promise<void> {
  byId<HTMLInputElement>('why-mode-log').checked = true
  showMode('log')
  byId<HTMLTextAreaElement>('log-input').value = decisionId
  return explain()
}

function showMode(mode: string): void {
  byId('why-form').hidden = mode !== 'form'
  byId('why-json').hidden = mode === 'log'
  byId('why-log').hidden = mode !== 'log'
}

export function whyView(): HTMLElement {
  const mode = (value: string, label: string) =>
    h('label', {}, h('input', { type: 'radio', name: 'why-mode', value, id: `why-mode-${value}`, checked: value === 'form', onchange: () => showMode(value) }), label)
  const form = h(
    'fieldset',
    { id: 'why-form', oninput: () => syncJson(), onchange: () => syncJson() },
    h('legend', {}, 'Request'),
    h(
      'div',
      { class: 'fields' },
      field('Subject id', input('f-subject', { value: 'carol' })),
      field('Roles (comma-separated)', input('f-roles')),
      field('Tenant', input('f-tenant', { value: 'acme' })),
      field('Action', input('f-action', { value: 'read' })),
      field('Resource type', input('f-rtype', { value: 'documents' })),
      field('Resource id', input('f-rid', { value: 'doc-1' })),
      field('Resource owner (attribute)', input('f-owner')),
      field('Client IP', input('f-ip')),
      field('Device id', input('f-device')),
      field('Device managed', select('f-managed', [['', 'not said'], ['yes', 'yes'], ['no', 'no']])),
      field('Seconds since authentication', input('f-authage', { inputmode: 'numeric' })),
      field('Sensitivity', select('f-sensitivity', [['', 'from risk.yaml'], ['low', 'low'], ['medium', 'medium'], ['high', 'high'], ['critical', 'critical']])),
    ),
  )
  const json = h(
    'div',
    { id: 'why-json' },
    h('label', { for: 'request-json' }, 'Request JSON (the body of POST /decide; the form writes here, edit freely)'),
    h('textarea', { id: 'request-json', class: 'tall', spellcheck: 'false', oninput: () => void checkJson(), 'aria-describedby': 'json-status' }),
    h('p', { id: 'json-status', role: 'status', 'aria-live': 'polite' }),
  )
  const log = h(
    'div',
    { id: 'why-log', hidden: true },
    h('label', { for: 'log-input' }, 'A decision-log line (JSON), or the decisionId of a recent decision'),
    h('textarea', { id: 'log-input', spellcheck: 'false' }),
  )
  const view = h(
    'section',
    { id: 'view-why', 'aria-labelledby': 'why-title' },
    h('h2', { id: 'why-title', class: 'sr-only' }, 'Why'),
    h(
      'div',
      { class: 'grid' },
      h(
        'div',
        { class: 'card' },
        h('fieldset', { class: 'inline' }, h('legend', {}, 'Explain'), mode('form', 'a composed request'), mode('log', 'a log line or decisionId')),
        form,
        json,
        log,
        field('Policy', select('why-policy', [['active', 'active policy'], ['shadow', 'shadow policy (PDP_SHADOW_POLICY_DIR)']])),
        h('button', { type: 'button', id: 'explain-btn', onclick: () => void explain() }, 'Explain'),
      ),
      h('div', { class: 'card', id: 'why-result', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Compose a request and press Explain.')),
    ),
  )
  return view
}
