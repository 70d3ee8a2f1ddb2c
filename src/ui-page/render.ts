import { riskChart } from './charts.js'
import { h, table, verdictBadge } from './dom.js'
import type { Explained } from './types.js'

/**
 * One explanation: verdict, reasons, step-up, matched rules, roles, risk chart and the gateways' answers. Each
 * part carries data-part (and data-field, the name the what-if differences use) so that a comparison can mark it.
 */
export function renderExplained(result: Explained, changed: ReadonlySet<string> = new Set()): HTMLElement {
  const { decision } = result
  const part = (name: string, fields: string[], ...children: (Node | string | null)[]) =>
    h('div', { 'data-part': name, class: fields.some((f) => changed.has(f)) ? 'changed' : undefined }, ...children)
  return h(
    'div',
    { class: 'explained' },
    part('verdict', ['decision'], h('h3', {}, 'Verdict'), verdictBadge(decision.decision), ' ', h('span', { class: 'muted mono' }, `policy ${decision.policyVersion}`)),
    part('reasons', ['reasons'], h('h3', {}, 'Reasons'), h('ul', { class: 'plain' }, decision.reasons.map((r) => h('li', { class: 'tag mono', 'data-reason': r }, r)))),
    part(
      'step-up',
      ['stepUp'],
      h('h3', {}, 'Step-up'),
      decision.stepUp
        ? h(
            'dl',
            {},
            h('dt', {}, 'Level'),
            h('dd', { 'data-step-up-level': decision.stepUp.level }, decision.stepUp.level),
            h('dt', {}, 'Methods'),
            h('dd', {}, decision.stepUp.methods.join(', ')),
            h('dt', {}, 'Max age'),
            h('dd', {}, `${decision.stepUp.maxAge} s`),
            h('dt', {}, 'ACR values'),
            h('dd', { class: 'mono' }, decision.stepUp.acrValues.join(' ')),
          )
        : h('p', { class: 'muted' }, 'None asked.'),
    ),
    part(
      'rules',
      ['matchedRules'],
      h('h3', {}, 'Matched rules'),
      result.rules.length === 0
        ? h('p', { class: 'muted' }, decision.explanation ? 'No rule matched.' : 'The policy was not consulted (decided before it).')
        : table('Matched rules', ['File:line', 'Rule'], result.rules.map((r) => [h('code', {}, r.file ? `${r.file}:${r.line}` : '—'), h('code', { 'data-rule': r.text }, r.text)])),
    ),
    part(
      'roles',
      ['effectiveRoles'],
      h('h3', {}, 'Effective roles'),
      result.roles.length === 0
        ? h('p', { class: 'muted' }, 'None.')
        : table('Effective roles and where they came from', ['Role', 'From'], result.roles.map((r) => [h('code', {}, r.role), r.sources.join(', ') || 'unknown'])),
    ),
    part(
      'risk',
      ['risk.score'],
      h('h3', {}, 'Risk'),
      decision.risk
        ? h('div', {}, h('p', {}, `Score ${decision.risk.score} (${decision.risk.level}), sensitivity ${decision.risk.sensitivity}`), riskChart(decision.risk.signals, decision.risk.score, decision.risk.multiplier))
        : h('p', { class: 'muted' }, 'Not assessed (the policy did not allow, or no store).'),
    ),
    part(
      'gateways',
      ['gateway.status', 'gateway.www-authenticate'],
      h('h3', {}, 'What each gateway gets'),
      h('p', { class: 'muted' }, 'POST /decide answers 200 with this decision as JSON; the forward-auth endpoints answer:'),
      table(
        'Forward-auth answers',
        ['Gateway', 'Endpoint', 'Status', 'WWW-Authenticate', 'X-Pdp-Reason'],
        result.gateways.map((g) => [g.gateway, h('code', {}, g.endpoint), h('strong', { 'data-status': g.status }, String(g.status)), h('code', { 'data-challenge': '' }, g.headers['www-authenticate'] ?? '—'), h('code', {}, g.headers['x-pdp-reason'] ?? '—')]),
      ),
    ),
  )
}
