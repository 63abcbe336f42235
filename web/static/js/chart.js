// chart.js: small SVG charts, drawn with the DOM (no markup strings, no inline styles). Each has role="img" and
// a label that says what it shows in words, for screen readers.
import { s, h } from './dom.js';

const W = 340, H = 170, L = 68, R = 8, T = 10, B = 22;

// lineChart({label, unit, max, window}): a live time series chart. Returns {el, push(t, values[]), setSeries(names)}.
// window is how many seconds it shows (default 60); max fixes the top of the scale (else the data's).
export function lineChart({ label, unit = '', max = null, window = 60, series = ['value'] }) {
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  const title = s('title', { text: label });
  const grid = s('g');
  const lines = series.map((_, i) => s('polyline', { class: ['line', 's' + i], points: '' }));
  svg.append(title, grid, ...lines);
  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' },
    series.map((name, i) => h('span', { class: ['key', 's' + i], text: name })));
  const el = h('figure', { class: 'panel' }, h('figcaption', { text: label }), svg, series.length > 1 ? legend : null);
  const points = []; // {t (ms), v: []}

  function draw() {
    const now = points.length ? points[points.length - 1].t : Date.now();
    const from = now - window * 1000;
    while (points.length > 2 && points[0].t < from - 5000) points.shift();
    let top = max;
    if (top === null) {
      top = 0;
      for (const p of points) for (const v of p.v) if (v > top) top = v;
      top = niceCeil(top || 1);
    }
    grid.replaceChildren();
    for (let i = 0; i <= 2; i++) {
      const y = T + (H - T - B) * (1 - i / 2);
      grid.append(s('line', { class: i ? 'grid-line' : 'axis', x1: L, x2: W - R, y1: y, y2: y }));
      grid.append(s('text', { x: L - 4, y: y + 4, 'text-anchor': 'end', text: fmt(top * i / 2) + unit }));
    }
    grid.append(s('text', { x: L, y: H - 6, text: `−${window} s` }), s('text', { x: W - R, y: H - 6, 'text-anchor': 'end', text: 'now' }));
    lines.forEach((line, i) => {
      const pts = points.filter((p) => p.t >= from - 5000).map((p) => {
        const x = L + (W - L - R) * Math.max(0, (p.t - from) / (window * 1000));
        const y = T + (H - T - B) * (1 - Math.min(1, (p.v[i] || 0) / top));
        return x.toFixed(1) + ',' + y.toFixed(1);
      });
      line.setAttribute('points', pts.join(' '));
    });
    const last = points[points.length - 1];
    if (last) {
      const words = series.map((name, i) => `${name} ${fmt(last.v[i])}${unit}`).join(', ');
      svg.setAttribute('aria-label', `${label}: now ${words}`);
      title.textContent = `${label}: now ${words}`;
    }
  }

  return {
    el,
    svg,
    push(t, values) { points.push({ t, v: values }); draw(); },
    count() { return points.length; },
    last() { return points.length ? points[points.length - 1].v : null; },
  };
}

// barChart({label, bars: [{name, value, cls}]}): horizontal bars with their values.
export function barChart({ label, bars, unit = '' }) {
  // The names' column fits the longest name (about 6.5 units a character at the charts' font), within bounds.
  const rowH = 26, width = 600, right = 70;
  const left = Math.round(Math.min(260, Math.max(110, 12 + 6.5 * Math.max(0, ...bars.map((b) => String(b.name).length)))));
  const height = Math.max(rowH, bars.length * rowH) + 8;
  const top = Math.max(1, ...bars.map((b) => b.value || 0));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': label + ': ' + bars.map((b) => `${b.name} ${fmt(b.value)}${unit}`).join(', ') });
  svg.append(s('title', { text: svg.getAttribute('aria-label') }));
  bars.forEach((b, i) => {
    const y = 4 + i * rowH;
    const w = Math.max(b.value ? 2 : 0, (width - left - right) * (b.value || 0) / top);
    svg.append(
      s('text', { x: left - 8, y: y + 16, 'text-anchor': 'end', text: b.name }),
      s('rect', { class: b.cls || 'bar', x: left, y: y + 3, width: w.toFixed(1), height: rowH - 8, rx: 2 }),
      s('text', { x: left + w + 6, y: y + 16, text: fmt(b.value) + unit }),
    );
  });
  return svg;
}

// stackBar({label, parts: [{name, value, cls}]}): one bar split in parts (findings by severity, say), for a
// table's cell; its label says every part in words. An empty bar says "none".
export function stackBar({ label, parts }) {
  const width = 160, height = 14;
  const total = parts.reduce((n, p) => n + (p.value || 0), 0);
  const words = total ? parts.filter((p) => p.value).map((p) => `${p.name} ${p.value}`).join(', ') : 'none';
  const svg = s('svg', { class: 'chart stack', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${label}: ${words}` });
  svg.append(s('title', { text: `${label}: ${words}` }));
  if (!total) {
    svg.append(s('rect', { class: 'bar-none', x: 0, y: 2, width, height: height - 4, rx: 2 }));
    return svg;
  }
  let x = 0;
  for (const p of parts) {
    if (!p.value) continue;
    const w = width * p.value / total;
    svg.append(s('rect', { class: p.cls || 'bar', x: x.toFixed(1), y: 1, width: Math.max(1, w).toFixed(1), height: height - 2 }));
    x += w;
  }
  return svg;
}

// trendChart({label, points: [{t: Date, values: []}], series: [{name, cls}]}): counts over time (a scan
// history), each series a line with a dot per point, oldest on the left. Its label says the first and the last
// point in words; the page shows the same numbers in a table.
export function trendChart({ label, points, series }) {
  const pts = [...points].sort((a, b) => a.t - b.t);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img' });
  const say = (p) => series.map((x, i) => `${x.name} ${p.values[i] || 0}`).join(', ');
  const words = pts.length ? `${pts.length} point${pts.length === 1 ? '' : 's'}; the latest (${pts[pts.length - 1].t.toLocaleString()}): ${say(pts[pts.length - 1])}` +
    (pts.length > 1 ? `; the first (${pts[0].t.toLocaleString()}): ${say(pts[0])}` : '') : 'no points';
  svg.setAttribute('aria-label', `${label}: ${words}`);
  svg.append(s('title', { text: `${label}: ${words}` }));
  let top = 0;
  for (const p of pts) for (const v of p.values) if (v > top) top = v;
  top = Math.max(4, niceCeil(top || 1));
  for (let i = 0; i <= 4; i++) {
    const y = T + (H - T - B) * (1 - i / 4);
    svg.append(s('line', { class: i ? 'grid-line' : 'axis', x1: L, x2: W - R, y1: y, y2: y }),
      s('text', { x: L - 6, y: y + 4, 'text-anchor': 'end', text: fmt(top * i / 4) }));
  }
  const t0 = pts.length ? pts[0].t.getTime() : 0, t1 = pts.length ? pts[pts.length - 1].t.getTime() : 1;
  const xOf = (t) => pts.length < 2 ? (L + W - R) / 2 : L + (W - L - R) * (t.getTime() - t0) / Math.max(1, t1 - t0);
  const yOf = (v) => T + (H - T - B) * (1 - (v || 0) / top);
  if (pts.length) {
    svg.append(s('text', { x: L, y: H - 6, text: pts[0].t.toLocaleDateString() }));
    if (pts.length > 1) svg.append(s('text', { x: W - R, y: H - 6, 'text-anchor': 'end', text: pts[pts.length - 1].t.toLocaleDateString() }));
  }
  series.forEach((x, i) => {
    svg.append(s('polyline', { class: ['line', x.cls], points: pts.map((p) => xOf(p.t).toFixed(1) + ',' + yOf(p.values[i]).toFixed(1)).join(' ') }));
    for (const p of pts) svg.append(s('circle', { class: ['dot', x.cls], cx: xOf(p.t).toFixed(1), cy: yOf(p.values[i]).toFixed(1), r: 3 }));
  });
  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' }, series.map((x) => h('span', { class: ['key', x.cls], text: x.name })));
  return h('figure', { class: 'panel trend' }, h('figcaption', { text: label }), svg, legend);
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  if (Math.abs(v) >= 100) return Math.round(v).toString();
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2).replace(/\.?0+$/, '') || '0';
}
