'use strict'
/**
 * Renders bench results: a Markdown table (stdout and bench/README.md) and an SVG chart of the
 * ratios to C.
 *
 * @example
 * console.log(renderTable(results))
 * writeFileSync('bench/ratios.svg', renderSvg(results, machine))
 */

function fmt(value, unit) {
  if (unit === 'us') return value < 10 ? value.toFixed(2) : value.toFixed(1)
  return value < 100 ? value.toFixed(1) : value.toFixed(0)
}

const UNIT = { us: 'µs', ns: 'ns' }

/** One Markdown table of every op's rows, then the implementations that did not run. */
function renderTable(results) {
  const head = ['primitive', 'operation', 'implementation', 'median', 'min–max', '× C', 'vs']
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i >= 3 ? ' ---: ' : ' --- ')).join('|')}|`]
  for (const op of results) {
    const unit = `${UNIT[op.unit]}/${op.per}`
    for (const row of op.rows) {
      let ratio = row.ratioC === null ? '–' : row.kind === 'c' ? '1 (baseline)' : `${row.ratioC.toFixed(2)}`
      if (row.target !== undefined) ratio += ` (target ≤ ${row.target} ${row.met ? 'met' : 'MISSED'})`
      let vs = row.vs ? `${row.vs.ratio.toFixed(2)}× ${row.vs.impl}` : ''
      if (row.vs?.target !== undefined) {
        const firstMet = row.vsMore === undefined ? row.metVs : row.vs.ratio <= row.vs.target
        vs += ` (target ≤ ${row.vs.target} ${firstMet ? 'met' : 'MISSED'})`
      }
      for (const more of row.vsMore ?? []) {
        vs += `; ${more.ratio === null ? '–' : more.ratio.toFixed(2)}× ${more.impl} (target ≤ ${more.target} ${more.met ? 'met' : 'MISSED'})`
      }
      lines.push(
        `| ${op.primitive} | ${op.operation} (${op.count.toLocaleString('en-US')}×) | ${row.impl}${row.count !== op.count ? ` (${row.count.toLocaleString('en-US')}×)` : ''} | ${fmt(row.median, op.unit)} ${unit} | ${fmt(row.min, op.unit)}–${fmt(row.max, op.unit)} | ${ratio} | ${vs} |`,
      )
    }
  }
  const missing = results.flatMap((op) =>
    op.unavailable.map((u) => `- ${op.operation}: **${u.impl}** did not run: ${u.reason}`),
  )
  if (missing.length > 0) lines.push('', 'Not run:', ...missing)
  return lines.join('\n')
}

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/**
 * A horizontal bar chart of each implementation's median over C's (log scale, 1 = C),
 * grouped by operation.
 */
function renderSvg(results, machine) {
  const bars = []
  for (const op of results) {
    const rows = op.rows.filter((r) => r.kind !== 'c' && r.ratioC !== null)
    if (rows.length === 0) continue
    bars.push({ group: `${op.primitive}: ${op.operation}` })
    for (const r of rows) bars.push({ label: r.impl, ratio: r.ratioC, kind: r.kind, target: r.target })
  }
  const maxRatio = Math.max(2, ...bars.filter((b) => b.ratio).map((b) => b.ratio))
  const maxExp = Math.ceil(Math.log2(maxRatio))
  const minExp = Math.min(0, Math.floor(Math.log2(Math.min(1, ...bars.filter((b) => b.ratio).map((b) => b.ratio)))))
  const left = 230
  const width = 820
  const plotW = width - left - 90
  const rowH = 20
  const top = 44
  const x = (ratio) => left + ((Math.log2(ratio) - minExp) / (maxExp - minExp)) * plotW
  const height = top + bars.length * rowH + 40
  const colors = { ipckit: '#2b7bb9', alt: '#999999', peer: '#d08c2b' }
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">Time relative to C doing the same work (log scale; 1 = C, lower is better)</text>`,
    `<text x="10" y="34" fill="#555">${esc(`${machine.cpu}, Node ${machine.node}, pinned: ${machine.pinned}, ${machine.date.slice(0, 10)}`)}</text>`,
  ]
  for (let e = minExp; e <= maxExp; e++) {
    const gx = x(2 ** e)
    out.push(`<line x1="${gx}" y1="${top}" x2="${gx}" y2="${height - 30}" stroke="${e === 0 ? '#000' : '#ddd'}"/>`)
    out.push(`<text x="${gx}" y="${height - 14}" text-anchor="middle">${2 ** e}×</text>`)
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH
    if (b.group) {
      out.push(`<text x="10" y="${y + 14}" font-weight="bold">${esc(b.group)}</text>`)
      return
    }
    const x0 = x(Math.min(1, b.ratio))
    const x1 = x(Math.max(1, b.ratio))
    out.push(`<text x="${left - 6}" y="${y + 14}" text-anchor="end">${esc(b.label)}</text>`)
    out.push(
      `<rect x="${x0}" y="${y + 4}" width="${Math.max(1, x1 - x0)}" height="${rowH - 8}" fill="${colors[b.kind] ?? '#999'}"/>`,
    )
    if (b.target !== undefined) {
      const tx = x(b.target)
      out.push(`<line x1="${tx}" y1="${y + 1}" x2="${tx}" y2="${y + rowH - 1}" stroke="#c00" stroke-width="2"/>`)
    }
    out.push(`<text x="${x1 + 4}" y="${y + 14}">${b.ratio.toFixed(2)}×</text>`)
  })
  out.push(
    `<text x="${left}" y="${height - 2}" fill="#555">blue: ipckit · orange: npm/PyPI peers · grey: Node built-ins · red tick: target</text>`,
  )
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

module.exports = { renderTable, renderSvg }
