import { api, setCredential, whenSignedOut } from './api.js'
import { byId, fill, h } from './dom.js'
import { liveView, startLive, stopLive } from './live.js'
import { subjectView } from './subject.js'
import type { PolicyStatus } from './types.js'
import { forgetFiles, whatIfOpened, whatIfView } from './whatif.js'
import { syncJson, whyView } from './why.js'

const VIEWS: [string, string][] = [
  ['why', 'Why'],
  ['whatif', 'What if'],
  ['live', 'Live'],
  ['subject', 'Subject'],
]

function show(name: string): void {
  for (const [view] of VIEWS) {
    byId(`view-${view}`).hidden = view !== name
    const tab = byId(`tab-${view}`)
    if (view === name) tab.setAttribute('aria-current', 'page')
    else tab.removeAttribute('aria-current')
  }
  if (name === 'whatif') void whatIfOpened()
}

function signOut(message = ''): void {
  setCredential(undefined)
  stopLive()
  forgetFiles()
  // Back to the page as served: only the sign-in form.
  document.getElementById('app')?.remove()
  byId('sign-in').hidden = false
  byId('who').textContent = ''
  byId('sign-in-error').textContent = message
  byId<HTMLInputElement>('credential').focus()
}

function mountApp(status: PolicyStatus): void {
  byId('sign-in').hidden = true
  byId('who').textContent = `Signed in · policy ${status.activeRevision}`
  const nav = h(
    'nav',
    { class: 'tabs', 'aria-label': 'Explorer views' },
    VIEWS.map(([view, label]) => h('button', { type: 'button', id: `tab-${view}`, onclick: () => show(view) }, label)),
    h('button', { type: 'button', id: 'sign-out', class: 'secondary', onclick: () => signOut() }, 'Sign out'),
  )
  const app = h('div', { id: 'app' }, nav, whyView(), whatIfView(), liveView(), subjectView())
  byId('main').append(app)
  syncJson()
  show('why')
  void startLive(show)
}

async function signIn(event: Event): Promise<void> {
  event.preventDefault()
  const input = byId<HTMLInputElement>('credential')
  const error = byId('sign-in-error')
  const value = input.value.trim()
  input.value = ''
  if (value === '') return
  setCredential(value)
  try {
    mountApp(await api<PolicyStatus>('GET', '/admin/policy'))
  } catch (err) {
    setCredential(undefined)
    // The PDP's own words: a wrong credential, one without pdp:admin, or a control plane that is not configured.
    fill(error, (err as Error).message)
  }
}

whenSignedOut((message) => signOut(`Signed out: ${message}`))
byId('sign-in-form').addEventListener('submit', (event) => void signIn(event))
