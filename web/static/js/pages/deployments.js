// Deployments: the applications of a namespace (a namespace selector); one application's workload, pods and
// their reasons, revisions; scale and roll back, and the rollout that follows them watched live.
//
// The rollout is followed by polling the deployment's status (GET …/{namespace}/{name}) every 1.5 s until it
// settles, not by a stream: the status is computed from several objects (the workload, its ReplicaSets, pods and
// services), which a server-side watch would have to watch all at once, and a poll that stops by itself when the
// rollout settles costs one small request a second and a half for as long as someone looks.
import { h, replace, when, ago, badge } from '../dom.js';
import * as api from '../api.js';

const POLL = 1500;           // ms between two reads while a rollout is followed
const REFRESH = 5000;        // ms between two reads otherwise
const FOLLOW_FOR = 5 * 60e3; // a rollout is followed at most this long

export async function render(main, args, ctx) {
  if (args.length >= 2) return detail(main, args[0], args[1], ctx);
  return list(main, args[0], ctx);
}

const route = (...parts) => '#/deployments/' + parts.map(encodeURIComponent).join('/');
const path = (ns, name) => '/v1/kubernetes/deployments/' + api.seg(ns) + '/' + api.seg(name);

function th(text, cls) { return h('th', { scope: 'col', class: cls, text }); }
function table(id, caption, heads, body) {
  return h('div', { class: 'table-wrap' }, h('table', { id },
    h('caption', { class: 'visually-hidden', text: caption }), h('thead', {}, h('tr', {}, heads)), body));
}
function emptyRow(cols, text) { return h('tr', {}, h('td', { colspan: cols, class: 'muted', text })); }

function statusBadge(st) {
  const cls = { running: 'ok', succeeded: 'ok', failed: 'bad', pending: 'warn' }[st] || null;
  return badge(st, cls);
}

// The namespace selector: the cluster's namespaces when the server may list them, else a text field.
async function namespacePicker(current, ctx) {
  let known = null;
  try { known = await api.get('/v1/kubernetes/namespaces'); } catch { /* typed by hand */ }
  const ns = current || (known && known.current) || 'default';
  let field;
  if (known && known.namespaces.length) {
    const names = known.namespaces.includes(ns) ? known.namespaces : [ns, ...known.namespaces];
    field = h('select', { id: 'namespace', name: 'namespace' },
      names.map((n) => h('option', { value: n, selected: n === ns, text: n + (n === known.current ? ' (the server\'s default)' : '') })));
  } else {
    field = h('input', { id: 'namespace', name: 'namespace', value: ns, autocomplete: 'off', spellcheck: 'false', required: true });
  }
  const form = h('form', { class: 'filters', on: { submit: (ev) => {
    ev.preventDefault();
    const v = field.value.trim();
    if (v) ctx.go(route(v));
  } } }, h('div', {}, h('label', { for: 'namespace', text: 'Namespace' }), field),
  h('div', {}, h('button', { type: 'submit', class: 'secondary', text: 'Show' })));
  return { form, ns };
}

async function list(main, current, ctx) {
  const { form, ns } = await namespacePicker(current, ctx);
  const body = h('tbody');
  const note = h('p', { class: 'muted', id: 'list-note' });
  main.append(h('h1', { text: 'Deployments' }), form,
    table('deployments', 'Deployments, StatefulSets and DaemonSets of ' + ns, [th('Application'), th('Kind', 'hide-narrow'), th('Status'),
      th('Ready', 'num'), th('Pods'), th('Image', 'hide-narrow'), th('Revision', 'num hide-narrow')], body), note);
  async function load() {
    const res = await api.get(api.q('/v1/kubernetes/deployments', { namespace: ns }));
    const rows = (res.deployments || []).map((d) => h('tr', { 'data-name': d.name },
      h('td', {}, h('a', { href: route(d.namespace, d.application || d.name), text: d.name })),
      h('td', { class: 'hide-narrow', text: d.kind || '–' }),
      h('td', {}, statusBadge(d.status)),
      h('td', { class: 'num', text: `${d.ready_replicas}/${d.replicas}` }),
      h('td', { text: podSummary(d.pods) }),
      h('td', { class: 'hide-narrow' }, h('code', { text: d.image })),
      h('td', { class: 'num hide-narrow', text: d.revision ? String(d.revision) : '–' })));
    replace(body, rows.length ? rows : emptyRow(7, `Nothing runs in ${ns}.`));
    note.textContent = `Namespace ${ns}; the list refreshes every ${REFRESH / 1000} s.`;
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH);
  return () => clearInterval(timer);
}

// podSummary: "3 Running, 1 Pending".
function podSummary(pods) {
  if (!pods || !pods.length) return 'none';
  const by = new Map();
  for (const p of pods) {
    const k = p.reason === 'Terminating' ? 'Terminating' : p.phase;
    by.set(k, (by.get(k) || 0) + 1);
  }
  return [...by].map(([k, n]) => `${n} ${k}`).join(', ');
}

// settled: nothing more will change by itself — every pod there is ready and none is leaving, or it failed.
function settled(d) {
  if (d.status === 'failed') return true;
  if (d.status === 'pending') return false;
  const leaving = d.pods.some((p) => p.reason === 'Terminating');
  return !leaving && d.ready_replicas === d.replicas && (d.kind === 'DaemonSet' || d.pods.length === d.replicas);
}

async function detail(main, ns, name, ctx) {
  const operate = ctx.can('operate');
  const title = h('h1', {}, h('span', { text: name }), ' ', h('span', { class: 'muted', text: 'in ' + ns }));
  const status = h('p', { id: 'status' });
  const facts = h('dl', { class: 'kv', id: 'facts' });
  const pods = h('tbody');
  const revisions = h('tbody');
  const rollout = h('p', { id: 'rollout', role: 'status' });
  const replicas = h('input', { id: 'replicas', name: 'replicas', type: 'number', min: '0', max: '1000', step: '1', required: true, disabled: !operate, class: 'narrow' });
  const scaleButton = h('button', { type: 'submit', id: 'scale', disabled: !operate, text: 'Scale' });
  const scaleForm = h('form', { class: 'filters', id: 'scale-form', on: { submit: (ev) => { ev.preventDefault(); scale(); } } },
    h('div', {}, h('label', { for: 'replicas', text: 'Replicas' }), replicas), h('div', {}, scaleButton));
  // The page's body shows once the deployment is read; one that cannot be read leaves its name and why.
  const page = h('div', { hidden: true }, status,
    h('section', { class: 'panel', 'aria-labelledby': 'facts-h' }, h('h2', { id: 'facts-h', text: 'Workload' }), facts),
    h('section', { 'aria-labelledby': 'pods-h' }, h('h2', { id: 'pods-h', text: 'Pods' }), scaleForm, rollout,
      table('pods', 'Pods of ' + name, [th('Pod'), th('Phase'), th('Ready'), th('Restarts', 'num hide-narrow'), th('Reason'),
        th('Node', 'hide-narrow')], pods)),
    h('section', { 'aria-labelledby': 'revisions-h' }, h('h2', { id: 'revisions-h', text: 'Revisions' }),
      table('revisions', 'Revisions of ' + name + ', oldest first', [th('Revision', 'num'), th('Images'), th('Created', 'hide-narrow'), th('Roll back')], revisions)));
  main.append(h('p', {}, h('a', { href: route(ns), text: '← Deployments in ' + ns })), title, page);

  let d = null;
  let stopped = false;
  let timer = null;
  let following = 0; // when the rollout being followed started (ms), 0 when none
  let lastRevision = null;

  function show(dep) {
    d = dep;
    replace(status, statusBadge(dep.status), ' ', h('span', { text: dep.message || '' }));
    status.dataset.status = dep.status;
    replace(facts,
      h('dt', { text: 'Kind' }), h('dd', { text: dep.kind || '–' }),
      h('dt', { text: 'Image' }), h('dd', {}, h('code', { text: dep.image || '–' })),
      h('dt', { text: 'Replicas' }), h('dd', { id: 'ready', text: `${dep.ready_replicas} of ${dep.replicas} ready` }),
      h('dt', { text: 'Revision' }), h('dd', { id: 'revision', text: dep.revision ? String(dep.revision) : '–' }),
      h('dt', { text: 'Services' }), h('dd', { text: (dep.services || []).join(', ') || 'none' }),
      h('dt', { text: 'Ports' }), h('dd', { text: (dep.ports || []).join(', ') || 'none' }),
      h('dt', { text: 'Resources' }), h('dd', { text: resources(dep.resources) }),
      h('dt', { text: 'Created' }), h('dd', { text: when(dep.created_at) }),
      h('dt', { text: 'Last change' }), h('dd', { text: ago(dep.last_updated) }));
    if (document.activeElement !== replicas && !following) replicas.value = String(dep.replicas);
    if (dep.kind === 'DaemonSet') scaleForm.hidden = true;
    const rows = dep.pods.map((p) => h('tr', { 'data-pod': p.name, 'data-phase': p.phase, 'data-ready': String(p.ready) },
      h('td', {}, h('code', { text: p.name })),
      h('td', {}, badge(p.reason === 'Terminating' ? 'Terminating' : p.phase, p.phase === 'Running' && p.ready ? 'ok' : p.phase === 'Failed' ? 'bad' : 'warn')),
      h('td', { text: p.ready ? 'yes' : 'no' }),
      h('td', { class: 'num hide-narrow', text: String(p.restarts) }),
      h('td', { text: [p.reason, p.container && p.reason ? `(container ${p.container})` : '', p.message].filter(Boolean).join(' ') || '–' }),
      h('td', { class: 'hide-narrow', text: p.node || '–' })));
    replace(pods, rows.length ? rows : emptyRow(6, 'No pods.'));
  }

  async function loadHistory() {
    const hist = await api.get(path(ns, name) + '/history');
    const rows = hist.revisions.map((r) => h('tr', { 'data-revision': String(r.revision), 'data-current': String(r.current) },
      h('td', { class: 'num', text: String(r.revision) }),
      h('td', {}, Object.entries(r.images || {}).map(([c, img]) => h('div', {}, h('span', { class: 'muted', text: c + ': ' }), h('code', { text: img })))),
      h('td', { class: 'hide-narrow', text: when(r.created) }),
      h('td', {}, r.current ? badge('current', 'ok') : h('button', { type: 'button', class: 'secondary', 'data-rollback': String(r.revision),
        disabled: !operate, text: `Roll back to ${r.revision}`, on: { click: () => rollback(r) } }))));
    replace(revisions, rows.length ? rows : emptyRow(4, 'No revisions are kept.'));
  }

  async function load() {
    const dep = await api.get(path(ns, name));
    if (stopped) return;
    show(dep);
    if (dep.revision !== lastRevision) {
      lastRevision = dep.revision;
      await loadHistory().catch((e) => replace(revisions, emptyRow(4, 'The history could not be read: ' + e.message)));
    }
    if (following) {
      const secs = Math.round((Date.now() - following) / 1000);
      if (settled(dep)) {
        following = 0;
        rollout.dataset.state = 'settled';
        rollout.textContent = `The rollout settled after ${secs} s: ${dep.ready_replicas} of ${dep.replicas} ready, ${podSummary(dep.pods)}${dep.status === 'failed' ? ' — it failed: ' + dep.message : ''}.`;
      } else if (Date.now() - following > FOLLOW_FOR) {
        following = 0;
        rollout.dataset.state = 'timeout';
        rollout.textContent = `Still not settled after ${secs} s (${podSummary(dep.pods)}); no longer followed: the list refreshes every ${REFRESH / 1000} s.`;
      } else {
        rollout.dataset.state = 'following';
        rollout.textContent = `Following the rollout (${secs} s): ${dep.ready_replicas} of ${dep.replicas} ready, ${podSummary(dep.pods)}.`;
      }
    }
  }

  // tick reads the status again, soon while a rollout is followed.
  function tick() {
    clearTimeout(timer);
    if (stopped) return;
    timer = setTimeout(async () => {
      try { await load(); } catch { /* the next tick tries again */ }
      tick();
    }, following ? POLL : REFRESH);
  }

  function follow(dep) {
    following = Date.now();
    rollout.dataset.state = 'following';
    rollout.textContent = 'Following the rollout…';
    show(dep);
    load().catch(() => {}).finally(tick);
  }

  async function scale() {
    const n = Number(replicas.value);
    if (!Number.isInteger(n) || n < 0) { ctx.notify('Replicas: a whole number, 0 or more.', true); return; }
    scaleButton.disabled = true;
    try {
      const dep = await api.post(path(ns, name) + '/scale', { replicas: n });
      ctx.notify(`Scaled ${name} to ${n}.`);
      follow(dep);
    } catch (e) {
      ctx.notify('Scale failed: ' + e.message, true);
    } finally { scaleButton.disabled = !operate; }
  }

  async function rollback(r) {
    const imgs = Object.entries(r.images || {}).map(([c, img]) => `${c}: ${img}`).join(', ');
    if (!(await ctx.confirm('Roll back ' + name, `Put ${name}'s pod template back to revision ${r.revision} (${imgs})? Its pods are replaced as a rollout does.`, `Roll back to ${r.revision}`))) return;
    try {
      const dep = await api.post(path(ns, name) + '/rollback', { to_revision: r.revision });
      ctx.notify(`Rolled ${name} back to revision ${r.revision}.`);
      follow(dep);
    } catch (e) {
      ctx.notify('Rollback failed: ' + e.message, true);
    }
  }

  try {
    await load();
  } catch (e) {
    main.append(h('p', { class: 'error-text', role: 'alert', text: e.message }));
    return null;
  }
  page.hidden = false;
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

function resources(r) {
  if (!r) return '–';
  const part = (a) => [a.cpu && 'CPU ' + a.cpu, a.memory && 'memory ' + a.memory].filter(Boolean).join(', ');
  const req = part(r.requests || {}), lim = part(r.limits || {});
  return [req && 'requests ' + req, lim && 'limits ' + lim].filter(Boolean).join('; ') || 'none set';
}
