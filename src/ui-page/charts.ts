const SVG = 'http://www.w3.org/2000/svg'

function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  if (text !== undefined) el.textContent = text
  return el
}

export interface Signal {
  name: string
  contribution: number
  reason?: string
  detail?: string
}

/** One horizontal bar per risk signal: the points it added (or took away) before the sensitivity multiplier. */
export function riskChart(signals: Signal[], score: number, multiplier: number): SVGSVGElement {
  const row = 26
  const labelWidth = 130
  const width = 560
  // Room on the right for the value and reason printed after each bar.
  const avail = width - labelWidth - 150
  const pos = Math.max(0, ...signals.map((x) => x.contribution))
  const neg = Math.max(0, ...signals.map((x) => -x.contribution))
  const total = pos + neg || 1
  const zero = labelWidth + (avail * neg) / total
  const height = signals.length * row + 34
  const summary = signals.map((x) => `${x.name} ${x.contribution >= 0 ? '+' : ''}${x.contribution}`).join(', ')
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-label': `Risk contributions: ${summary}; score ${score} after ×${multiplier}`, id: 'risk-chart' })
  svg.append(s('title', {}, 'Risk signal contributions'))
  signals.forEach((x, i) => {
    const y = i * row + 6
    const w = (Math.abs(x.contribution) / total) * avail
    svg.append(s('text', { x: 0, y: y + 15 }, x.name))
    const bar = s('rect', { x: x.contribution >= 0 ? zero : zero - w, y: y + 3, width: Math.max(w, 1), height: row - 10, class: x.contribution > 0 ? 'bar-pos' : 'bar-neg', 'data-signal': x.name, 'data-contribution': x.contribution })
    bar.append(s('title', {}, `${x.name}: ${x.contribution}${x.reason ? ` (${x.reason})` : ''}${x.detail ? ` — ${x.detail}` : ''}`))
    svg.append(bar)
    svg.append(s('text', { x: zero + (x.contribution >= 0 ? w : 0) + 4, y: y + 15 }, `${x.contribution >= 0 ? '+' : ''}${x.contribution}${x.reason ? ` ${x.reason}` : ''}`))
  })
  const bottom = signals.length * row + 6
  svg.append(s('line', { x1: zero, y1: 2, x2: zero, y2: bottom, class: 'axis' }))
  svg.append(s('text', { x: 0, y: bottom + 20 }, `score ${score} = sum × ${multiplier} (sensitivity)`))
  return svg
}

export interface Minute {
  minute: string
  verdicts: Record<string, number>
  reasons: Record<string, number>
}

const VERDICTS = ['allow', 'step_up', 'deny']

/** Decisions per minute, one stacked column per minute by verdict. */
export function statsChart(minutes: Minute[]): SVGSVGElement {
  const width = 520
  const height = 150
  const bottom = height - 22
  const totals = minutes.map((m) => VERDICTS.reduce((n, v) => n + (m.verdicts[v] ?? 0), 0))
  const max = Math.max(1, ...totals)
  const step = (width - 40) / Math.max(1, minutes.length)
  const all = totals.reduce((a, b) => a + b, 0)
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-label': `${all} decisions in the last ${minutes.length} minutes`, id: 'stats-chart' })
  svg.append(s('title', {}, 'Decisions per minute by verdict'))
  minutes.forEach((m, i) => {
    let y = bottom
    for (const v of VERDICTS) {
      const n = m.verdicts[v] ?? 0
      if (n === 0) continue
      const h = (n / max) * (bottom - 10)
      y -= h
      const rect = s('rect', { x: 36 + i * step + 1, y, width: Math.max(1, step - 2), height: h, class: `v-${v}` })
      rect.append(s('title', {}, `${new Date(m.minute).toLocaleTimeString()}: ${n} ${v}`))
      svg.append(rect)
    }
  })
  svg.append(s('line', { x1: 34, y1: bottom, x2: width, y2: bottom, class: 'axis' }))
  svg.append(s('text', { x: 0, y: 18 }, String(max)))
  svg.append(s('text', { x: 0, y: bottom }, '0'))
  if (minutes.length > 0) {
    svg.append(s('text', { x: 36, y: height - 4 }, new Date(minutes[0]!.minute).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })))
    svg.append(s('text', { x: width, y: height - 4, 'text-anchor': 'end' }, new Date(minutes[minutes.length - 1]!.minute).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })))
  }
  return svg
}
