import { api } from './api.js'
import { byId, field, fill, h, table, time } from './dom.js'
import { showError } from './why.js'

interface Session { id: string; created: number; lastActivity: number; device?: string; ip?: string; revoked: boolean }
interface Device { id: string; trust?: number; firstSeen?: number; lastSeen?: number; sessions: string[] }
interface Restriction { rule: string; since: number; until?: number; level?: string; mode?: string }
interface Grant { id: string; role?: string; permission?: { resourceType: string; action: string }; tenant?: string; status: string; grantedBy: string; approvedBy?: string; justification: string; expiresAt?: number }

const path = (subject: string) => encodeURIComponent(subject)

/** Runs one admin action, reports it and reloads the subject (the server audits each action as always). */
async function act(label: string, method: string, url: string, body?: unknown): Promise<void> {
  const message = byId('subject-message')
  try {
    await api(method, url, body)
    message.className = 'status-ok'
    message.textContent = `${label}: done.`
  } catch (err) {
    message.className = 'error'
    message.textContent = `${label}: ${(err as Error).message}`
  }
  await load()
}

const KINDS: [keyof Restrictions, string, string][] = [
  ['locked', 'lock', 'Locked'],
  ['frozen', 'freeze', 'Frozen'],
  ['stepUp', 'step-up', 'Step-up forced'],
]
type Restrictions = { locked?: Restriction; frozen?: Restriction; stepUp?: Restriction }

async function load(): Promise<void> {
  const subject = byId<HTMLInputElement>('subject-id').value.trim()
  const out = byId('subject-result')
  if (subject === '') {
    fill(out, h('p', { class: 'error' }, 'Enter a subject id.'))
    return
  }
  try {
    const [sessions, devices, restrictions, grants] = await Promise.all([
      api<{ sessions: Session[] }>('GET', `/admin/subjects/${path(subject)}/sessions`),
      api<{ devices: Device[] }>('GET', `/admin/subjects/${path(subject)}/devices`),
      api<Restrictions>('GET', `/admin/subjects/${path(subject)}/restrictions`),
      api<{ grants: Grant[] }>('GET', `/admin/grants/${path(subject)}`),
    ])
    const button = (label: string, aria: string, onclick: () => void) => h('button', { type: 'button', class: 'small', 'aria-label': aria, onclick }, label)
    const inForce = KINDS.filter(([key]) => restrictions[key] !== undefined)
    fill(
      out,
      h('h2', {}, `Subject ${subject}`),
      h(
        'div',
        { class: 'grid' },
        h(
          'div',
          { class: 'card' },
          h('h3', {}, 'Sessions'),
          sessions.sessions.length === 0
            ? h('p', { class: 'muted' }, 'No session seen.')
            : table(
                'Sessions',
                ['Session', 'Device', 'IP', 'Last activity', 'State', ''],
                sessions.sessions.map((s) => [
                  h('code', { 'data-session': s.id }, s.id),
                  s.device ?? '—',
                  s.ip ?? '—',
                  time(s.lastActivity),
                  h('span', { 'data-session-state': s.id }, s.revoked ? 'revoked' : 'active'),
                  s.revoked ? '' : button('Revoke', `Revoke session ${s.id}`, () => void act(`Revoke session ${s.id}`, 'DELETE', `/admin/subjects/${path(subject)}/sessions/${encodeURIComponent(s.id)}`)),
                ]),
              ),
          sessions.sessions.length > 0 ? button('Revoke all sessions and tokens', `Revoke all sessions and tokens of ${subject}`, () => void act('Revoke all', 'DELETE', `/admin/subjects/${path(subject)}/sessions`)) : null,
        ),
        h(
          'div',
          { class: 'card' },
          h('h3', {}, 'Devices'),
          devices.devices.length === 0
            ? h('p', { class: 'muted' }, 'No device seen with a session.')
            : table('Devices', ['Device', 'Stored trust', 'First seen', 'Last seen', 'Sessions'], devices.devices.map((d) => [h('code', {}, d.id), d.trust ?? 'initial', d.firstSeen ? time(d.firstSeen) : '—', d.lastSeen ? time(d.lastSeen) : '—', d.sessions.length])),
        ),
        h(
          'div',
          { class: 'card' },
          h('h3', {}, 'Restrictions'),
          inForce.length === 0
            ? h('p', { class: 'muted' }, 'None in force.')
            : table('Restrictions', ['Kind', 'Rule', 'Since', 'Until', ''], inForce.map(([key, kind, label]) => {
                const r = restrictions[key]!
                return [label, h('code', {}, r.rule), time(r.since), r.until ? time(r.until) : 'until lifted', button('Lift', `Lift ${label}`, () => void act(`Lift ${kind}`, 'DELETE', `/admin/subjects/${path(subject)}/restrictions/${kind}`))]
              })),
        ),
        h(
          'div',
          { class: 'card' },
          h('h3', {}, 'Grants'),
          grants.grants.length === 0
            ? h('p', { class: 'muted' }, 'No grant.')
            : table('Grants', ['Grant', 'Status', 'Granted by', 'Justification', 'Expires', ''], grants.grants.map((g) => [
                h('code', {}, g.role ?? `${g.permission?.action} ${g.permission?.resourceType}`),
                g.status,
                g.grantedBy,
                g.justification,
                g.expiresAt ? time(g.expiresAt) : '—',
                h(
                  'span',
                  {},
                  g.status === 'pending' ? button('Approve', `Approve grant ${g.id}`, () => void act('Approve', 'POST', `/admin/grants/${path(subject)}/${encodeURIComponent(g.id)}/approve`, {})) : null,
                  ' ',
                  button('Revoke', `Revoke grant ${g.id}`, () => void act('Revoke grant', 'DELETE', `/admin/grants/${path(subject)}/${encodeURIComponent(g.id)}`)),
                ),
              ])),
        ),
      ),
    )
  } catch (err) {
    showError(out, err)
  }
}

export function subjectView(): HTMLElement {
  return h(
    'section',
    { id: 'view-subject', 'aria-labelledby': 'subject-title', hidden: true },
    h(
      'form',
      { class: 'card', onsubmit: (e: Event) => {
        e.preventDefault()
        byId('subject-message').textContent = ''
        void load()
      } },
      h('h2', { id: 'subject-title' }, 'Subject'),
      field('Subject id', h('input', { id: 'subject-id', type: 'text', autocomplete: 'off', spellcheck: 'false', required: true })),
      h('button', { type: 'submit', id: 'subject-load' }, 'Show'),
      h('p', { id: 'subject-message', role: 'status' }),
    ),
    h('div', { id: 'subject-result', 'aria-live': 'polite' }),
  )
}
