import { api, stream } from './api.js'
import { statsChart, type Minute } from './charts.js'
import { byId, field, fill, h, verdictBadge } from './dom.js'
import type { DecisionLine, PolicyStatus } from './types.js'
import { explainDecision } from './why.js'

/** Rows the live table keeps; older ones drop off the bottom. */
const MAX_ROWS = 200
let controller: AbortController | undefined
let statsTimer: number | undefined
let statsSoon: number | undefined
let showView: (name: string) => void = () => {}

function row(line: DecisionLine): HTMLElement {
  const resource = `${line.resource.type}${line.resource.id === undefined ? '' : `/${line.resource.id}`}`
  return h(
    'tr',
    { 'data-decision-id': line.decision_id, 'data-subject': line.subject ?? '' },
    h('td', {}, new Date(line.time).toLocaleTimeString()),
    h('td', {}, verdictBadge(line.verdict)),
    h('td', {}, h('code', {}, line.subject ?? '—')),
    h('td', {}, h('code', {}, `${line.action} ${resource}`)),
    h('td', {}, line.reasons.map((r) => h('span', { class: 'tag mono' }, r))),
    h('td', {}, line.source ?? ''),
    h('td', {}, h('button', { type: 'button', class: 'small secondary', 'aria-label': `Why? ${line.decision_id}`, onclick: () => {
      showView('why')
      void explainDecision(line.decision_id)
    } }, 'Why?')),
  )
}

export function renderPolicyStatus(status: PolicyStatus): void {
  fill(
    byId('policy-status'),
    h(
      'dl',
      {},
      h('dt', {}, 'Revision'),
      h('dd', { class: 'mono', id: 'policy-revision' }, status.activeRevision),
      h('dt', {}, 'Engine'),
      h('dd', {}, `${status.engine}, ${status.ruleCount} rules`),
      h('dt', {}, 'Loaded'),
      h('dd', {}, new Date(status.lastSuccess).toLocaleString()),
      h('dt', {}, 'Reloads'),
      h('dd', {}, `${status.reloads.success} loaded, ${status.reloads.failure} rejected; watching: ${status.watch.state}`),
      h('dt', {}, 'Last rejected edit'),
      h('dd', { class: status.lastError ? 'error' : 'muted', id: 'policy-last-error' }, status.lastError ? `${status.lastError.message} (${new Date(status.lastError.at).toLocaleString()})` : 'none'),
    ),
  )
}

async function refreshStats(): Promise<void> {
  try {
    const stats = await api<{ minutes: Minute[]; streams: { open: number; max: number } }>('GET', '/admin/explorer/stats')
    const reasons = new Map<string, number>()
    for (const m of stats.minutes) for (const [r, n] of Object.entries(m.reasons)) reasons.set(r, (reasons.get(r) ?? 0) + n)
    const top = [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 8)
    fill(
      byId('stats'),
      statsChart(stats.minutes),
      h('p', { class: 'legend' }, ['allow', 'step_up', 'deny'].map((v) => h('span', {}, h('span', { class: `sw ${v}` }), v))),
      h('h3', {}, 'Top reasons'),
      top.length === 0 ? h('p', { class: 'muted' }, 'No decisions yet.') : h('ul', { class: 'plain' }, top.map(([r, n]) => h('li', {}, h('code', {}, r), ` ${n}`))),
    )
  } catch {
    // The next tick tries again; a signed-out page stops the timer.
  }
}

function filterQuery(): string {
  const params = new URLSearchParams()
  for (const [id, key] of [['live-verdict', 'verdict'], ['live-reason', 'reason'], ['live-subject', 'subject'], ['live-route', 'route']] as const) {
    const value = byId<HTMLInputElement>(id).value.trim()
    if (value !== '') params.set(key, value)
  }
  return params.toString()
}

async function connect(): Promise<void> {
  controller?.abort()
  const mine = new AbortController()
  controller = mine
  const rows = byId('live-rows')
  const status = byId('live-status')
  rows.replaceChildren()
  const query = filterQuery()
  status.textContent = 'Connecting…'
  try {
    const started = stream(`/admin/explorer/stream${query ? `?${query}` : ''}`, (event, data) => {
      if (event === 'decision') {
        rows.prepend(row(data as DecisionLine))
        while (rows.childElementCount > MAX_ROWS) rows.lastElementChild?.remove()
        // New decisions show in the counts soon, but at most one refresh per few seconds however busy the PDP is.
        statsSoon ??= window.setTimeout(() => {
          statsSoon = undefined
          void refreshStats()
        }, 3000)
      } else if (event === 'policy') {
        renderPolicyStatus(data as PolicyStatus)
      }
    }, mine.signal)
    status.textContent = `Live${query ? ` (filtered: ${decodeURIComponent(query.replace(/&/g, ', '))})` : ''}`
    await started
    if (!mine.signal.aborted) status.textContent = 'The stream ended; reconnecting…'
  } catch (err) {
    if (mine.signal.aborted) return
    status.textContent = `Not connected: ${(err as Error).message}; retrying…`
  }
  if (!mine.signal.aborted) window.setTimeout(() => controller === mine && void connect(), 3000)
}

export async function startLive(show: (name: string) => void): Promise<void> {
  showView = show
  void connect()
  void refreshStats()
  statsTimer = window.setInterval(() => void refreshStats(), 10_000)
  renderPolicyStatus(await api<PolicyStatus>('GET', '/admin/policy'))
}

export function stopLive(): void {
  controller?.abort()
  controller = undefined
  window.clearInterval(statsTimer)
  window.clearTimeout(statsSoon)
  statsSoon = undefined
}

export function liveView(): HTMLElement {
  const text = (id: string, label: string) => field(label, h('input', { id, type: 'text', autocomplete: 'off', spellcheck: 'false' }))
  return h(
    'section',
    { id: 'view-live', 'aria-labelledby': 'live-title', hidden: true },
    h(
      'div',
      { class: 'grid' },
      h('div', { class: 'card' }, h('h2', {}, 'Policy'), h('div', { id: 'policy-status' })),
      h('div', { class: 'card' }, h('h2', {}, 'Decisions per minute'), h('div', { id: 'stats' })),
    ),
    h(
      'div',
      { class: 'card' },
      h('h2', { id: 'live-title' }, 'Live decisions'),
      h(
        'form',
        { id: 'live-filters', class: 'fields', onsubmit: (e: Event) => {
          e.preventDefault()
          void connect()
        } },
        field('Verdict', h('select', { id: 'live-verdict' }, [['', 'any'], ['allow', 'allow'], ['deny', 'deny'], ['step_up', 'step_up']].map(([v, l]) => h('option', { value: v }, l)))),
        text('live-reason', 'Reason'),
        text('live-subject', 'Subject'),
        text('live-route', 'Route (action type/id)'),
        h('div', {}, h('button', { type: 'submit', id: 'live-apply' }, 'Apply filters')),
      ),
      h('p', { id: 'live-status', role: 'status', class: 'muted' }),
      h(
        'div',
        { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': 'Recent decisions' },
        h(
          'table',
          { id: 'live-table' },
          h('caption', { class: 'sr-only' }, 'Recent decisions, newest first'),
          h('thead', {}, h('tr', {}, ['Time', 'Verdict', 'Subject', 'Action and resource', 'Reasons', 'Source', 'Explain'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', { id: 'live-rows' }),
        ),
      ),
    ),
  )
}
