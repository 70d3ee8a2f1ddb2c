import { api } from './api.js'
import { byId, field, fill, h, table } from './dom.js'
import { renderExplained } from './render.js'
import type { WhatIfAnswer } from './types.js'
import { currentSubject, showError } from './why.js'

let files: Record<string, string> | undefined

const show = (value: unknown) => (value === null || value === undefined ? '—' : typeof value === 'string' ? value : JSON.stringify(value))

async function loadFiles(): Promise<void> {
  const status = byId('edit-status')
  try {
    const answer = await api<{ revision: string; activeRevision: string; files: Record<string, string> }>('GET', '/admin/explorer/policy-files')
    files = answer.files
    const picker = byId<HTMLSelectElement>('edit-file')
    fill(picker, Object.keys(files).map((name) => h('option', { value: name }, name)))
    picker.value = files['policy.csv'] !== undefined ? 'policy.csv' : (Object.keys(files)[0] ?? '')
    byId<HTMLTextAreaElement>('edit-text').value = files[picker.value] ?? ''
    status.textContent =
      answer.revision === answer.activeRevision ? `Files of the active revision ${answer.activeRevision}.` : `The files on disk (${answer.revision}) differ from the active revision ${answer.activeRevision}: a rejected edit is on disk.`
  } catch (err) {
    showError(status, err)
  }
}

async function compare(): Promise<void> {
  const out = byId('whatif-result')
  fill(out, h('p', { class: 'muted' }, 'Comparing…'))
  try {
    const subject = await currentSubject()
    const shadow = byId<HTMLInputElement>('whatif-shadow').checked
    const name = byId<HTMLSelectElement>('edit-file').value
    const body = shadow ? { ...subject, shadow: true } : { ...subject, files: { [name]: byId<HTMLTextAreaElement>('edit-text').value } }
    const answer = await api<WhatIfAnswer>('POST', '/admin/explorer/what-if', body)
    const changed = new Set(answer.differences.map((d) => d.field))
    const label = answer.candidate.source === 'shadow' ? 'Shadow policy' : 'Edited policy (in memory)'
    fill(
      out,
      h('h2', {}, 'What if'),
      answer.differences.length === 0
        ? h('p', { id: 'whatif-diff', 'data-differences': 0 }, 'No difference: the request is decided the same way.')
        : h(
            'div',
            { id: 'whatif-diff', 'data-differences': answer.differences.length },
            h('p', {}, `${answer.differences.length} difference(s), highlighted below:`),
            table('Differences', ['Field', 'Active', label], answer.differences.map((d) => [h('code', {}, d.field), h('code', {}, show(d.active)), h('code', { class: 'changed' }, show(d.candidate))])),
          ),
      h(
        'div',
        { class: 'grid' },
        h('div', { class: 'card', id: 'whatif-active' }, h('h3', {}, `Active (${answer.active.revision})`), renderExplained(answer.active.result, changed)),
        h('div', { class: 'card', id: 'whatif-candidate' }, h('h3', {}, `${label} (${answer.candidate.revision})`), renderExplained(answer.candidate.result, changed)),
      ),
    )
  } catch (err) {
    showError(out, err)
  }
}

export function whatIfView(): HTMLElement {
  const candidate = (id: string, label: string, checked: boolean) =>
    h('label', {}, h('input', { type: 'radio', name: 'whatif-candidate', id, checked, onchange: () => (byId('edit-box').hidden = byId<HTMLInputElement>('whatif-shadow').checked) }), label)
  return h(
    'section',
    { id: 'view-whatif', 'aria-labelledby': 'whatif-title', hidden: true },
    h(
      'div',
      { class: 'card' },
      h('h2', { id: 'whatif-title' }, 'What if'),
      h('p', { class: 'muted' }, 'The request composed in Why (or its log line or decisionId), under the active policy and under a candidate, side by side. Edits stay in memory; nothing is written to disk.'),
      h('fieldset', { class: 'inline' }, h('legend', {}, 'Candidate'), candidate('whatif-edit', 'an edit of the policy files', true), candidate('whatif-shadow', 'the shadow policy directory', false)),
      h(
        'div',
        { id: 'edit-box' },
        field('File', h('select', { id: 'edit-file', onchange: () => (byId<HTMLTextAreaElement>('edit-text').value = files?.[byId<HTMLSelectElement>('edit-file').value] ?? '') })),
        h('label', { for: 'edit-text' }, 'Content (replaces the file in memory)'),
        h('textarea', { id: 'edit-text', class: 'tall', spellcheck: 'false' }),
        h('p', { id: 'edit-status', class: 'muted', role: 'status' }),
        h('button', { type: 'button', class: 'secondary', onclick: () => void loadFiles() }, 'Reload files from the PDP'),
      ),
      h('button', { type: 'button', id: 'compare-btn', onclick: () => void compare() }, 'Compare'),
    ),
    h('div', { id: 'whatif-result', 'aria-live': 'polite' }),
  )
}

export const whatIfOpened = (): Promise<void> => (files === undefined ? loadFiles() : Promise.resolve())
export const forgetFiles = (): void => {
  files = undefined
}
