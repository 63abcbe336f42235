// Optimizations: the optimization jobs with their sizes and layers before and after; one optimization's picture
// (before and after as bars), what was removed and why, the probe's verdict on both images; a form to start one,
// followed live.
import { h, replace, when, ago, bytes, badge, scroller } from '../dom.js';
import * as api from '../api.js';
import { barChart } from '../chart.js';

const MiB = 1048576;
const done = (j) => j.state === 'succeeded' || j.state === 'failed' || j.state === 'canceled';

export async function render(main, args, ctx) {
  return args.length ? detail(main, args[0], ctx) : list(main, ctx);
}

async function list(main, ctx) {
  const body = h('tbody');
  main.append(h('h1', { text: 'Optimizations' }), startForm(ctx),
    h('section', { 'aria-labelledby': 'list-h' }, h('h2', { id: 'list-h', text: 'Optimization jobs' }),
      scroller(h('table', { id: 'optimizations' },
        h('caption', { class: 'visually-hidden', text: 'Optimization jobs, newest first' }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Image' }), h('th', { scope: 'col', text: 'State' }),
          h('th', { scope: 'col', class: 'num', text: 'Before' }), h('th', { scope: 'col', class: 'num', text: 'After' }),
          h('th', { scope: 'col', class: 'num hide-narrow', text: 'Layers' }), h('th', { scope: 'col', class: 'hide-narrow', text: 'Verified' }),
          h('th', { scope: 'col', class: 'hide-narrow', text: 'Started' }))),
        body))));
  async function load() {
    const res = await api.get('/v1/optimizations?limit=50');
    const rows = (res.optimizations || []).map(({ job, result: r }) => h('tr', { 'data-job': job.id },
      h('td', {}, h('a', { href: '#/optimizations/' + encodeURIComponent(job.id), text: job.subject }),
        r ? h('div', { class: 'muted' }, '→ ', h('code', { text: r.optimized_image })) : null),
      h('td', {}, badge(job.state, job.state)),
      h('td', { class: 'num', text: r ? bytes(r.size_before) : '–' }),
      h('td', { class: 'num', text: r ? bytes(r.size_after) : '–' }),
      h('td', { class: 'num hide-narrow', text: r ? `${r.layers_before} → ${r.layers_after}` : '–' }),
      h('td', { class: 'hide-narrow' }, r ? (r.verified ? badge('verified', 'ok') : badge('not verified', 'bad')) : '–'),
      h('td', { class: 'hide-narrow', text: ago(job.created), title: when(job.created) })));
    replace(body, rows.length ? rows : h('tr', {}, h('td', { colspan: 7, class: 'muted', text: 'No optimizations yet.' })));
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return () => clearInterval(timer);
}

// startForm: an image, a type, the optimized image's name and a probe (an HTTP check or a command run), posted
// as a job; the page of the job follows it.
function startForm(ctx) {
  const can = ctx.can('operate');
  const field = (id, label, el, help) => h('div', {}, h('label', { for: id, text: label }), el, help ? h('span', { class: 'muted', id: id + '-help', text: help }) : null);
  const image = h('input', { id: 'o-image', type: 'text', required: true, spellcheck: 'false', autocomplete: 'off', disabled: !can });
  const type = h('select', { id: 'o-type', disabled: !can }, h('option', { value: 'size', text: 'size' }), h('option', { value: 'security', text: 'security' }));
  const target = h('input', { id: 'o-target', type: 'text', spellcheck: 'false', autocomplete: 'off', disabled: !can, 'aria-describedby': 'o-target-help' });
  const probe = h('select', { id: 'o-probe', disabled: !can }, h('option', { value: 'http', text: 'an HTTP request' }),
    h('option', { value: 'run', text: 'a command run to its end' }), h('option', { value: '', text: 'none (lossless only)' }));
  const port = h('input', { id: 'o-port', type: 'number', min: '1', max: '65535', value: '8080', disabled: !can });
  const path = h('input', { id: 'o-path', type: 'text', value: '/', disabled: !can });
  const expect = h('input', { id: 'o-body', type: 'text', disabled: !can, 'aria-describedby': 'o-body-help' });
  const cmd = h('input', { id: 'o-cmd', type: 'text', disabled: !can, 'aria-describedby': 'o-cmd-help' });
  const httpFields = h('div', { class: 'filters' }, field('o-port', 'Port', port), field('o-path', 'Path', path),
    field('o-body', 'Expected in the answer', expect, 'optional'));
  const runFields = h('div', { class: 'filters', hidden: true }, field('o-cmd', 'Command', cmd, 'split at spaces; its exit code must be 0'));
  probe.addEventListener('change', () => { httpFields.hidden = probe.value !== 'http'; runFields.hidden = probe.value !== 'run'; });
  const err = h('p', { class: 'error-text', role: 'alert' });
  const button = h('button', { type: 'submit', id: 'o-submit', disabled: !can, text: 'Optimize' });
  return h('form', { class: 'panel', id: 'optimize-form', on: { submit: async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    const req = { image_name: image.value.trim(), optimization_type: type.value };
    if (target.value.trim()) req.optimized_image = target.value.trim();
    if (probe.value === 'http') {
      req.probe = { http: [{ port: Number(port.value), path: path.value || '/' }] };
      if (expect.value) req.probe.http[0].body = expect.value;
    } else if (probe.value === 'run') {
      const argv = cmd.value.trim().split(/\s+/).filter(Boolean);
      if (!argv.length) { err.textContent = 'The command is empty.'; cmd.focus(); return; }
      req.probe = { run: { cmd: argv } };
    }
    button.disabled = true;
    try {
      const job = await api.post('/v1/optimizations', req);
      ctx.go('#/optimizations/' + encodeURIComponent(job.id));
    } catch (e) {
      err.textContent = e.message;
    } finally {
      button.disabled = !can;
    }
  } } },
  h('h2', { text: 'Optimize an image' }),
  h('div', { class: 'filters' }, field('o-image', 'Image', image), field('o-type', 'Type', type),
    field('o-target', 'Optimized image', target, 'default: the image\'s tag with -optimized'), field('o-probe', 'Prove it works with', probe)),
  httpFields, runFields,
  h('div', {}, button), can ? null : h('p', { class: 'muted', text: 'Optimizing needs a token of scope operate.' }), err);
}

async function detail(main, id, ctx) {
  const path = '/v1/jobs/' + api.seg(id);
  const head = h('div', { id: 'o-head' });
  const live = h('ol', { id: 'o-progress', class: 'panel', 'aria-live': 'polite' });
  const body = h('div', { id: 'o-result' });
  main.append(h('p', {}, h('a', { href: '#/optimizations', text: '← Optimizations' })), h('h1', {}, 'Optimization ', h('code', { text: id })), head, body);
  let job = await api.get(path);
  if (job.kind !== 'optimize') {
    replace(body, h('p', {}, 'Job ', h('a', { href: '#/jobs/' + encodeURIComponent(id), text: id }), ` is a ${job.kind} job, not an optimization.`));
    return null;
  }
  show(job);
  if (done(job)) return null;
  body.before(h('h2', { text: 'Progress' }), live);
  let close = null;
  const ended = new Promise((resolve) => {
    close = api.stream(path + '/events', {
      progress: (e) => {
        live.append(h('li', {}, h('strong', { text: [e.op, e.phase].filter(Boolean).join(' ') + ' ' }), [e.subject, e.status, e.message].filter(Boolean).join(' · ')));
        while (live.children.length > 200) live.firstElementChild.remove();
      },
      end: (j) => { close(); resolve(j); },
      error: () => {},
    });
  });
  ended.then((j) => { job = j; show(j); });
  return () => close && close();

  function show(j) {
    replace(head, h('p', {}, badge(j.state, j.state), ' ', h('code', { text: j.subject }), ` · started ${when(j.created)} by ${j.owner}`,
      j.finished ? ` · ended ${when(j.finished)}` : ''));
    if (!done(j)) return replace(body, h('p', { class: 'muted', text: 'Running: the result comes when it ends.' }));
    const r = j.result;
    replace(body,
      j.error ? h('p', { class: 'error-text', role: 'alert', id: 'o-error', text: j.error.message || JSON.stringify(j.error) }) : null,
      r ? result(r) : h('p', { class: 'muted', text: 'This optimization has no result.' }));
  }
}

function result(r) {
  const mib = (b) => b / MiB;
  const facts = h('dl', { class: 'kv', id: 'o-facts' },
    h('dt', { text: 'Original' }), h('dd', {}, h('code', { text: r.original_image })),
    h('dt', { text: 'Optimized' }), h('dd', {}, h('code', { text: r.optimized_image })),
    h('dt', { text: 'Type' }), h('dd', { text: r.optimization_type }),
    h('dt', { text: 'Size' }), h('dd', { id: 'o-sizes', text: `${bytes(r.size_before)} → ${bytes(r.size_after)} (${r.size_reduction_mb.toFixed(1)} MB less)` }),
    h('dt', { text: 'Layers' }), h('dd', { id: 'o-layers', text: `${r.layers_before} → ${r.layers_after}` }),
    h('dt', { text: 'Files' }), h('dd', { text: `${r.files_before} → ${r.files_after}` }),
    h('dt', { text: 'Verification' }), h('dd', { id: 'o-verified' }, r.verified ? badge('verified', 'ok') : badge('not verified', 'bad'),
      (r.verification_issues || []).length ? h('ul', {}, r.verification_issues.map((x) => h('li', { text: x }))) : null),
    r.minified ? null : [h('dt', { text: 'Method' }), h('dd', { text: 'lossless only' + (r.lossless_reason ? ': ' + r.lossless_reason : '') })],
    r.target_reached == null ? null : [h('dt', { text: 'Target size' }), h('dd', { text: r.target_reached ? 'reached' : 'not reached' })]);
  const picture = h('div', { id: 'o-picture' },
    h('figure', { class: 'panel', id: 'o-size-chart' }, h('figcaption', { text: 'Size, before and after' }),
      barChart({ label: 'Size in MiB', unit: ' MiB', bars: [
        { name: 'before', value: mib(r.size_before), cls: 'bar-before' }, { name: 'after', value: mib(r.size_after), cls: 'bar-after' }] })),
    h('figure', { class: 'panel', id: 'o-layer-chart' }, h('figcaption', { text: 'Layers, before and after' }),
      barChart({ label: 'Layers', bars: [
        { name: 'before', value: r.layers_before, cls: 'bar-before' }, { name: 'after', value: r.layers_after, cls: 'bar-after' }] })));
  const removed = r.removed || [];
  return h('div', {},
    h('section', { class: 'panel', 'aria-labelledby': 'o-facts-h' }, h('h2', { id: 'o-facts-h', text: 'Result' }), facts),
    h('section', { 'aria-labelledby': 'o-picture-h' }, h('h2', { id: 'o-picture-h', text: 'Before and after' }), picture),
    h('section', { 'aria-labelledby': 'o-removed-h' }, h('h2', { id: 'o-removed-h', text: 'What was removed' }),
      removed.length ? scroller(h('table', { id: 'o-removed' },
        h('caption', { class: 'visually-hidden', text: 'What was removed, by reason' }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Reason' }), h('th', { scope: 'col', class: 'num', text: 'Files' }),
          h('th', { scope: 'col', class: 'num', text: 'Size' }), h('th', { scope: 'col', class: 'hide-narrow', text: 'The largest' }))),
        h('tbody', {}, removed.map((x) => h('tr', {}, h('td', { text: x.reason }), h('td', { class: 'num', text: String(x.files) }),
          h('td', { class: 'num', text: bytes(x.bytes) }),
          h('td', { class: 'hide-narrow' }, (x.paths || []).slice(0, 8).map((p) => h('div', {}, h('code', { text: p })))))))))
        : h('p', { class: 'muted', text: 'Nothing was removed.' })),
    h('section', { 'aria-labelledby': 'o-probe-h' }, h('h2', { id: 'o-probe-h', text: 'The probe' }),
      h('div', { class: 'grid' }, probeCard('On the original', r.probe_original, 'o-probe-original'), probeCard('On the optimized image', r.probe_optimized, 'o-probe-optimized'))),
    (r.notes || []).length ? h('section', { 'aria-labelledby': 'o-notes-h' }, h('h2', { id: 'o-notes-h', text: 'Notes' }),
      h('ul', { class: 'panel' }, r.notes.map((n) => h('li', { text: n })))) : null);
}

function probeCard(title, p, id) {
  if (!p) return h('div', { class: 'panel', id }, h('h3', { text: title }), h('p', { class: 'muted', text: 'No probe ran.' }));
  return h('div', { class: 'panel', id, 'data-passed': String(p.passed) }, h('h3', { text: title }),
    h('p', {}, p.passed ? badge('passed', 'ok') : badge('failed', 'bad'), ` in ${p.duration.toFixed(1)} s`),
    p.failure ? h('p', { class: 'error-text', text: p.failure }) : null,
    h('ul', {}, (p.checks || []).map((c) => h('li', {}, c.passed ? '✓ ' : '✗ ', h('code', { text: c.check }),
      c.status ? ` → ${c.status}` : '', c.error ? ` · ${c.error}` : ''))),
    p.logs ? h('pre', { class: 'log', tabindex: '0', 'aria-label': 'The container\'s last output', text: p.logs }) : null);
}
