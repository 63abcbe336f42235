// Registries: the saved registries; a registry's repositories, its retention policy in words, a plan of it (a
// job, followed live: each artifact kept or deleted and why), applying it after a confirmation that counts the
// tags it deletes, and its past runs; a repository's tags with their digests and sizes.
import { h, replace, bytes, when, shortDigest, badge } from '../dom.js';
import * as api from '../api.js';

export async function render(main, args, ctx) {
  if (args.length > 1) return repository(main, args[0], args.slice(1).join('/'));
  if (args.length === 1) return registry(main, args[0], ctx);
  return list(main);
}

const base = (name) => '/v1/registries/' + api.seg(name);
const route = (...parts) => '#/registries/' + parts.map(encodeURIComponent).join('/');

function th(text, cls) { return h('th', { scope: 'col', class: cls, text }); }
function table(id, caption, heads, body) {
  return h('div', { class: 'table-wrap' }, h('table', { id },
    h('caption', { class: 'visually-hidden', text: caption }), h('thead', {}, h('tr', {}, heads)), body));
}
function emptyRow(cols, text) { return h('tr', {}, h('td', { colspan: cols, class: 'muted', text })); }
function alert(e) { return h('p', { class: 'error-text', role: 'alert', text: e.message }); }

async function list(main) {
  const body = h('tbody');
  main.append(h('h1', { text: 'Registries' }),
    h('p', { class: 'muted', text: 'The registries saved on the server (myrmex registry add), their logins kept encrypted there.' }),
    table('registries', 'Saved registries', [th('Name'), th('Address'), th('Type', 'hide-narrow'), th('Login', 'hide-narrow'),
      th('Scan on push', 'hide-narrow'), th('Retention')], body));
  const res = await api.get('/v1/registries');
  const rows = (res.registries || []).map((r) => h('tr', { 'data-name': r.name },
    h('td', {}, h('a', { href: route(r.name), text: r.name })),
    h('td', {}, h('code', { text: r.url })),
    h('td', { class: 'hide-narrow', text: r.type || 'generic' }),
    h('td', { class: 'hide-narrow', text: (r.credentials && r.credentials.username) || ((r.credentials && r.credentials.token) ? 'a token' : 'none') }),
    h('td', { class: 'hide-narrow', text: r.security_scan_enabled ? 'yes' : 'no' }),
    h('td', { text: r.retention_policy ? 'a policy' + (r.retention_policy.schedule ? ', on ' + r.retention_policy.schedule : ', when asked') : 'none' })));
  replace(body, rows.length ? rows : emptyRow(6, 'No registry is saved: an admin saves one with myrmex registry add, or POST /v1/registries.'));
}

// A registry: what it is, its repositories, its retention policy, plan and runs.
async function registry(main, name, ctx) {
  let stopped = false;
  let closeJob = null;
  const facts = h('dl', { class: 'kv', id: 'facts' });
  const repos = h('tbody');
  const policy = h('div', { id: 'policy' });
  const planStatus = h('p', { id: 'plan-status', role: 'status' });
  const planBox = h('div', { id: 'plan' });
  const runs = h('tbody');
  // Handlers go on at once: the page is shown while it still loads, and a click then must not be lost.
  const planButton = h('button', { type: 'button', id: 'make-plan', disabled: !ctx.can('operate'), text: 'Plan retention', on: { click: plan } });
  // The page's body shows once the registry is read; a registry that cannot be read leaves its name and why.
  const page = h('div', { hidden: true },
    h('section', { class: 'panel', 'aria-labelledby': 'facts-h' }, h('h2', { id: 'facts-h', text: 'Connection' }), facts),
    h('section', { 'aria-labelledby': 'repos-h' }, h('h2', { id: 'repos-h', text: 'Repositories' }),
      table('repositories', 'Repositories of ' + name, [th('Repository')], repos)),
    h('section', { 'aria-labelledby': 'retention-h' }, h('h2', { id: 'retention-h', text: 'Retention' }), policy,
      h('div', { class: 'row' }, planButton), planStatus, planBox),
    h('section', { 'aria-labelledby': 'runs-h' }, h('h2', { id: 'runs-h', text: 'Past retention runs' }),
      table('runs', 'Retention runs of ' + name + ', newest first', [th('Started'), th('Run'), th('State'), th('Kept', 'num'),
        th('Deleted', 'num'), th('By', 'hide-narrow'), th('Report')], runs)));
  main.append(h('p', {}, h('a', { href: '#/registries', text: '← Registries' })), h('h1', {}, 'Registry ', h('span', { text: name })), page);

  let reg;
  try {
    reg = await api.get(api.q(base(name), { catalog: 'false' }));
  } catch (e) {
    main.append(alert(e));
    return null;
  }
  page.hidden = false;
  replace(facts,
    h('dt', { text: 'Address' }), h('dd', {}, h('code', { text: reg.url })),
    h('dt', { text: 'Type' }), h('dd', { text: reg.type || 'generic' }),
    h('dt', { text: 'Login' }), h('dd', { text: (reg.credentials && reg.credentials.username) || 'none' }),
    h('dt', { text: 'Scan on push' }), h('dd', { text: reg.security_scan_enabled ? 'yes: pushes through Myrmex attach a scan' : 'no' }),
    reg.ca_file ? [h('dt', { text: 'CA file' }), h('dd', {}, h('code', { text: reg.ca_file }))] : null);
  replace(policy, describePolicy(reg.retention_policy));
  if (!reg.retention_policy) planButton.hidden = true;

  api.get(base(name)).then((full) => {
    const rows = (full.repositories || []).map((r) => h('tr', { 'data-repository': r },
      h('td', {}, h('a', { href: route(name, ...r.split('/')), text: r }))));
    replace(repos, rows.length ? rows : emptyRow(1, 'The catalog lists no repository.'));
  }, (e) => replace(repos, emptyRow(1, 'The catalog could not be read: ' + e.message)));

  // follow(job): a retention job to its end, its report shown.
  async function follow(job, what) {
    const link = h('a', { href: '#/jobs/' + encodeURIComponent(job.id), text: 'job ' + job.id });
    replace(planStatus, what + ' … (', link, ')');
    planBox.replaceChildren();
    const ended = await new Promise((resolve, reject) => {
      let done = false;
      closeJob = api.stream('/v1/jobs/' + api.seg(job.id) + '/events', {
        end: (j) => { done = true; closeJob(); closeJob = null; resolve(j); },
        error: (es) => { if (!done && es.readyState === EventSource.CLOSED) reject(new Error('the job\'s event stream closed')); },
      });
    });
    if (stopped) return;
    const full = await api.get('/v1/jobs/' + api.seg(ended.id));
    showReport(full);
    loadRuns();
  }

  // showReport(job): a retention job's report; a plan gets the Apply button.
  function showReport(job) {
    const link = h('a', { href: '#/jobs/' + encodeURIComponent(job.id), text: 'job ' + job.id });
    const r = job.result;
    if (job.state !== 'succeeded' || !r) {
      const msg = job.error ? (job.error.message || JSON.stringify(job.error)) : job.state;
      replace(planStatus, h('span', { class: 'error-text', text: 'The run did not succeed: ' + msg + ' ' }), '(', link, ')');
      if (!r) { planBox.replaceChildren(); return; }
    }
    const gone = (r.artifacts || []).filter((a) => (r.dry_run ? !a.keep : a.deleted));
    const tags = gone.flatMap((a) => (a.tags || []).map((t) => a.repository + ':' + t));
    if (job.state === 'succeeded') {
      replace(planStatus, r.dry_run ? `Plan of ${when(r.planned_at)}: ${r.kept} kept, ${r.deleted} to delete (${tags.length} tags). ` :
        `Applied ${when(job.finished)}: ${r.kept} kept, ${r.deleted} deleted${r.skipped ? `, ${r.skipped} skipped` : ''}${r.failed ? `, ${r.failed} failed` : ''}. `, '(', link, ')');
    }
    const apply = r.dry_run && ctx.can('operate') && gone.length ? h('button', { type: 'button', class: 'danger', id: 'apply-plan',
      text: `Apply: delete ${tags.length} tags`, on: { click: async () => {
        const shown = tags.slice(0, 8).join(', ') + (tags.length > 8 ? ` and ${tags.length - 8} more` : '');
        const untagged = gone.length - gone.filter((a) => (a.tags || []).length).length;
        const text = `Delete ${tags.length} tag${tags.length === 1 ? '' : 's'} (${gone.length} image${gone.length === 1 ? '' : 's'}${untagged ? `, ${untagged} untagged` : ''}) from ${name}: ${shown}? ` +
          'The server plans again just before it deletes: what was pushed since this plan is judged anew. This cannot be undone.';
        if (!(await ctx.confirm('Apply the retention policy', text, `Delete ${tags.length} tags`))) return;
        try {
          const j = await api.post(base(name) + '/retention', { apply: true });
          await follow(j, 'Applying the retention policy');
        } catch (e) { ctx.notify('Retention failed: ' + e.message, true); }
      } } }) : null;
    const rows = (r.artifacts || []).map((a) => {
      const verdict = r.dry_run ? (a.keep ? badge('keep', 'ok') : badge('delete', 'bad')) :
        a.deleted ? badge('deleted', 'bad') : a.skipped ? badge('skipped', 'warn') : badge('kept', 'ok');
      return h('tr', { 'data-digest': a.digest, 'data-keep': String(a.keep) },
        h('td', { text: a.repository }),
        h('td', {}, (a.tags || []).length ? a.tags.map((t) => h('code', { class: 'tag', text: t })) : h('span', { class: 'muted', text: 'untagged' })),
        h('td', { class: 'hide-narrow' }, h('code', { title: a.digest, text: shortDigest(a.digest) })),
        h('td', { class: 'hide-narrow', text: a.pushed_at ? when(a.pushed_at) : 'unknown' }),
        h('td', {}, verdict),
        h('td', { text: a.reason + (a.error ? ' — ' + a.error : '') }));
    });
    replace(planBox,
      (r.notes || []).filter(Boolean).map((n) => h('p', { class: 'muted', text: n })),
      table('plan-artifacts', (r.dry_run ? 'Retention plan' : 'Retention run') + ': each image kept or deleted, and why',
        [th('Repository'), th('Tags'), th('Digest', 'hide-narrow'), th('Pushed', 'hide-narrow'), th(r.dry_run ? 'Plan' : 'Outcome'), th('Why')],
        h('tbody', {}, rows.length ? rows : emptyRow(6, 'Nothing in the registry.'))),
      apply ? h('div', { class: 'row' }, apply) : null);
  }

  async function loadRuns() {
    const res = await api.get(api.q('/v1/jobs', { kind: 'retention', subject: name, limit: 20 }));
    const jobs = res.jobs || [];
    // The newest ten with their reports' counts (the list has none).
    const full = await Promise.all(jobs.map((j, i) => (i < 10 && j.finished ? api.get('/v1/jobs/' + api.seg(j.id)).catch(() => j) : j)));
    if (stopped) return;
    const rows = full.map((j) => {
      const r = j.result;
      return h('tr', { 'data-job': j.id },
        h('td', {}, h('a', { href: '#/jobs/' + encodeURIComponent(j.id), text: when(j.created) })),
        h('td', { text: r ? (r.dry_run ? 'plan' : 'applied') : '–' }),
        h('td', {}, badge(j.state, j.state === 'succeeded' ? 'ok' : j.state)),
        h('td', { class: 'num', text: r ? String(r.kept) : '–' }),
        h('td', { class: 'num', text: r ? String(r.deleted) : '–' }),
        h('td', { class: 'hide-narrow', text: j.owner }),
        h('td', {}, r ? h('button', { type: 'button', class: 'secondary', text: 'Show', 'aria-label': 'Show the report of ' + when(j.created),
          on: { click: () => { showReport(j); planStatus.scrollIntoView({ block: 'nearest' }); } } }) : '–'));
    });
    replace(runs, rows.length ? rows : emptyRow(7, 'No retention run yet.'));
  }

  async function plan() {
    planButton.disabled = true;
    try {
      const j = await api.post(base(name) + '/retention');
      await follow(j, 'Planning');
    } catch (e) {
      replace(planStatus, h('span', { class: 'error-text', text: e.message }));
    } finally { planButton.disabled = !ctx.can('operate'); }
  }
  await loadRuns();
  const timer = setInterval(() => loadRuns().catch(() => {}), 15000);
  return () => { stopped = true; clearInterval(timer); if (closeJob) closeJob(); };
}

// describePolicy: a retention policy in words.
function describePolicy(p) {
  if (!p) return h('p', { class: 'muted', text: 'No retention policy is saved with this registry: nothing is ever deleted by one.' });
  const sel = (s, what) => {
    if (!s || !s.pattern) return 'all ' + what;
    return what + (s.decoration === 'excludes' ? ' not matching ' : ' matching ') + s.pattern;
  };
  const keep = (r) => {
    const k = r.retain || {};
    if (k.always) return 'keep them all';
    if (k.most_recently_pushed) return `keep the ${k.most_recently_pushed} most recently pushed`;
    if (k.pushed_within_days) return `keep those pushed within ${k.pushed_within_days} days`;
    return 'keep none';
  };
  return h('div', { class: 'panel' },
    h('p', {}, 'An image is kept when any rule keeps it; the others are deleted. ',
      p.schedule ? `The policy runs on the server on the schedule ${p.schedule} (UTC).` : 'The policy runs when asked.'),
    h('ol', { id: 'rules' }, (p.rules || []).map((r) => h('li', { class: r.disabled ? 'muted' : null,
      text: `In ${sel(r.repositories, 'repositories')}, of ${sel(r.tags, 'tags')}${r.untagged ? ' and untagged images' : ''}: ${keep(r)}${r.disabled ? ' (disabled)' : ''}.` }))));
}

// A repository: its tags with what each names.
async function repository(main, name, repo) {
  const body = h('tbody');
  const note = h('p', { class: 'muted', id: 'tags-note' });
  main.append(h('p', {}, h('a', { href: route(name), text: '← Registry ' + name })),
    h('h1', {}, 'Repository ', h('span', { text: repo })),
    note,
    table('tags', 'Tags of ' + repo, [th('Tag'), th('Digest'), th('Size', 'num'), th('Type', 'hide-narrow'), th('Platforms', 'hide-narrow')], body));
  const path = base(name) + '/repositories/' + repo.split('/').map(api.seg).join('/') + '/tags';
  let res;
  try {
    res = await api.get(api.q(path, { details: 'true' }));
  } catch (e) {
    replace(body, emptyRow(5, 'The tags could not be read.'));
    note.replaceWith(alert(e));
    return null;
  }
  const details = new Map((res.tag_details || []).map((d) => [d.tag, d]));
  const rows = (res.tags || []).map((t) => {
    const d = details.get(t);
    const digest = d && d.digest;
    return h('tr', { 'data-tag': t, 'data-digest': digest || '' },
      h('th', { scope: 'row' }, h('code', { text: t })),
      h('td', {}, digest ? h('code', { title: digest, text: shortDigest(digest) }) : h('span', { class: d && d.error ? 'error-text' : 'muted', text: d && d.error ? d.error : '–' })),
      h('td', { class: 'num', 'data-size': d && digest ? String(d.size) : '', text: d && digest ? bytes(d.size) : '–' }),
      h('td', { class: 'hide-narrow', text: d && d.media_type ? kindOf(d.media_type) : '–' }),
      h('td', { class: 'hide-narrow', text: d && d.platforms ? d.platforms.join(', ') : '–' }));
  });
  replace(body, rows.length ? rows : emptyRow(5, 'No tags.'));
  const n = (res.tags || []).length;
  note.textContent = `${n} tag${n === 1 ? '' : 's'} in ${res.registry_url || name}` +
    (details.size < n ? `; digests and sizes of the first ${details.size}` : '') + '. Sizes are what the registry stores: config and compressed layers.';
}

function kindOf(mt) {
  if (/index|manifest\.list/.test(mt)) return 'index';
  if (/manifest/.test(mt)) return 'image';
  return mt;
}
