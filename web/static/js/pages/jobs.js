// Jobs: running and finished, with live progress; one job's events, result and error.
import { h, replace, when, badge } from '../dom.js';
import * as api from '../api.js';

export async function render(main, args, ctx) {
  return args.length ? detail(main, args[0], ctx) : list(main, ctx);
}

async function list(main) {
  const body = h('tbody');
  main.append(h('h1', { text: 'Jobs' }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'jobs' },
      h('caption', { class: 'visually-hidden', text: 'Jobs, newest first' }),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Job' }), h('th', { scope: 'col', text: 'Kind' }),
        h('th', { scope: 'col', text: 'Subject' }), h('th', { scope: 'col', text: 'State' }),
        h('th', { scope: 'col', class: 'hide-narrow', text: 'Created' }), h('th', { scope: 'col', class: 'hide-narrow', text: 'By' }))),
      body)));
  async function load() {
    const res = await api.get('/v1/jobs?limit=100');
    const rows = (res.jobs || []).map((j) => h('tr', {},
      h('td', {}, h('a', { href: '#/jobs/' + encodeURIComponent(j.id) }, h('code', { text: j.id }))),
      h('td', { text: j.kind }), h('td', { text: j.subject }), h('td', {}, badge(j.state, j.state)),
      h('td', { class: 'hide-narrow', text: when(j.created) }), h('td', { class: 'hide-narrow', text: j.owner })));
    replace(body, rows.length ? rows : h('tr', {}, h('td', { colspan: 6, class: 'muted', text: 'No jobs yet.' })));
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), 3000);
  return () => clearInterval(timer);
}

async function detail(main, id, ctx) {
  const path = '/v1/jobs/' + api.seg(id);
  const head = h('div', { class: 'row spread' });
  const events = h('ol', { id: 'events', class: 'panel', 'aria-live': 'polite' });
  const result = h('div', { id: 'result' });
  const bar = h('progress', { class: 'progress', max: '100', 'aria-label': 'Progress' });
  main.append(h('p', {}, h('a', { href: '#/jobs', text: '← Jobs' })), h('h1', {}, 'Job ', h('code', { text: id })), head, bar,
    h('h2', { text: 'Progress' }), events, h('h2', { text: 'Result' }), result);

  function show(j) {
    const cancel = !j_done(j) && ctx.can('operate') ? h('button', { type: 'button', class: 'danger', text: 'Cancel', on: { click: async () => {
      if (!(await ctx.confirm('Cancel job', `Cancel ${j.kind} of ${j.subject}?`, 'Cancel the job'))) return;
      try { await api.del(path); ctx.notify('Cancellation asked for.'); } catch (e) { ctx.notify(e.message, true); }
    } } }) : null;
    replace(head, h('p', {}, badge(j.state, j.state), ' ', h('strong', { text: j.kind }), ' of ', h('code', { text: j.subject }),
      ' · created ', when(j.created)), cancel);
    if (j_done(j)) {
      bar.value = 100;
      replace(result,
        j.error ? h('p', { class: 'error-text', role: 'alert', text: (j.error.message || JSON.stringify(j.error)) }) : null,
        j.result ? h('pre', { class: 'log', tabindex: '0', 'aria-label': 'Result', text: JSON.stringify(j.result, null, 2) }) : null);
    }
  }
  show(await api.get(path));
  const close = api.stream(path + '/events', {
    progress: (e) => {
      events.append(h('li', {}, h('span', { class: 'muted', text: new Date(e.time || Date.now()).toLocaleTimeString() + ' ' }),
        h('strong', { text: [e.op, e.phase].filter(Boolean).join(' ') + ' ' }),
        [e.subject, e.status, e.message].filter(Boolean).join(' · ')));
      while (events.children.length > 500) events.firstElementChild.remove();
      if (e.bytes_total > 0) bar.value = Math.min(100, 100 * e.bytes_done / e.bytes_total);
    },
    end: (j) => { close(); show(j); },
    error: () => {},
  });
  return close;
}

function j_done(j) {
  return j.state === 'succeeded' || j.state === 'failed' || j.state === 'canceled';
}
