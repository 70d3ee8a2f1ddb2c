/** A small element builder: no HTML strings anywhere, so nothing a decision contains is ever parsed as markup. */
type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | undefined | ((event: Event) => void)>

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue
    if (typeof value === 'function') el.addEventListener(key.replace(/^on/, ''), value)
    else if (value === true) el.setAttribute(key, '')
    else el.setAttribute(key, String(value))
  }
  append(el, children)
  return el
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'number' ? String(child) : child)
  }
}

/** Replaces an element's content. */
export function fill(el: Element, ...children: (Child | Child[])[]): void {
  el.replaceChildren()
  append(el, children)
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id)
  if (!el) throw new Error(`#${id} is missing`)
  return el as T
}

/** A table with a header row; cells may be nodes. */
export function table(caption: string, head: string[], rows: Child[][], attrs: Attrs = {}): HTMLElement {
  // Focusable and named, so that a keyboard can scroll a table wider than a phone's screen.
  return h(
    'div',
    { class: 'scroll', tabindex: 0, role: 'region', 'aria-label': caption },
    h(
      'table',
      attrs,
      h('caption', { class: 'sr-only' }, caption),
      h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))),
    ),
  )
}

export function verdictBadge(verdict: string, id?: string): HTMLElement {
  return h('span', { class: `verdict ${verdict}`, id, 'data-verdict': verdict }, verdict)
}

export function field(label: string, input: HTMLElement): HTMLElement {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`
  input.id = id
  return h('div', {}, h('label', { for: id }, label), input)
}

export const time = (ms: number | string) => new Date(ms).toLocaleString()
