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
  const rowH = 26, width = 600, left = 110, right = 70;
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
