// dom.js: building the page from data. Every value goes in as text (textContent) or as an attribute set one by
// one; nothing is ever parsed as markup, so a container named <img onerror=…> is shown, never run.

const SVG = 'http://www.w3.org/2000/svg';

// h(tag, props, ...children): an element. props: class, text, on: {event: fn}, and attributes (aria-*, id,
// href, type, …; a value of false or null leaves the attribute out). Children: nodes, strings (as text), arrays.
export function h(tag, props = {}, ...children) {
  return build(document.createElement(tag), props, children);
}

// s(tag, props, ...children): an SVG element, the same way.
export function s(tag, props = {}, ...children) {
  return build(document.createElementNS(SVG, tag), props, children);
}

function build(el, props, children) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'value' && 'value' in el) el.value = v;
    else if (k.startsWith('on')) throw new Error('dom: event handlers go in on: {…}, not ' + k);
    else if (k === 'href' && !safeHref(v)) throw new Error('dom: refused link ' + v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Links go to this dashboard's routes, this server's API, or http(s) pages: never javascript: or data:.
function safeHref(v) {
  return /^(#|\/|https?:\/\/)/.test(String(v));
}

// replace(el, ...children): el's children become these.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Formatting.
export function mib(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  if (v >= 1024) return (v / 1024).toFixed(2) + ' GiB';
  return v.toFixed(v >= 100 ? 0 : 1) + ' MiB';
}
export function bytes(v) {
  if (v === undefined || v === null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)) + ' ' + u[i];
}
export function pct(v) {
  return v === undefined || v === null ? '–' : v.toFixed(1) + ' %';
}
export function when(t) {
  if (!t || t.startsWith('0001-')) return '–';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString();
}
export function ago(t) {
  if (!t || t.startsWith('0001-')) return '–';
  const s = (Date.now() - new Date(t).getTime()) / 1000;
  if (s < 60) return Math.max(0, Math.round(s)) + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}
export function shortDigest(d) {
  return d ? String(d).replace(/^sha256:/, '').slice(0, 12) : '–';
}

// badge(text, cls): a small coloured label.
export function badge(text, cls) {
  return h('span', { class: ['badge', cls] , text });
}

// scroller(table): the table in a box that scrolls sideways on a narrow screen. The box takes the keyboard's
// focus, so that the keyboard can scroll it too, and is a region named by the table's caption.
export function scroller(table) {
  const caption = table.querySelector('caption');
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption ? caption.textContent : 'Table' }, table);
}
