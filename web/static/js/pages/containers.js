// Containers: the list with state, health and performance score; a container's CPU, memory and network as live
// charts (its metrics stream), its logs as they come, and start/stop/restart/remove with confirmation.
import { h, replace, mib, pct, ago, badge } from '../dom.js';
import * as api from '../api.js';
import { lineChart } from '../chart.js';

export async function render(main, args, ctx) {
  return args.length ? detail(main, args[0], ctx) : list(main, ctx);
}

async function list(main, ctx) {
  const all = h('input', { type: 'checkbox', id: 'all' });
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  main.append(
    h('h1', { text: 'Containers' }),
    h('div', { class: 'row filters' }, h('div', { class: 'row' }, all, h('label', { for: 'all', text: 'Every container of the engine, not only Myrmex\'s' }))),
    h('div', { class: 'table-wrap' }, h('table', { id: 'containers' },
      h('caption', { class: 'visually-hidden', text: 'Containers' }),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col', text: 'Name' }), h('th', { scope: 'col', text: 'Image' }), h('th', { scope: 'col', text: 'State' }),
        h('th', { scope: 'col', text: 'Health' }), h('th', { scope: 'col', class: 'num', text: 'Score' }),
        h('th', { scope: 'col', class: 'num', text: 'CPU' }), h('th', { scope: 'col', class: 'num hide-narrow', text: 'Memory' }))),
      body)),
    note);

  async function load() {
    const [res, samples] = await Promise.all([
      api.get(api.q('/v1/containers', { all: all.checked ? 'true' : '' })),
      api.get('/v1/metrics/containers').catch(() => ({ containers: [] })),
    ]);
    const byID = new Map((samples.containers || []).map((m) => [m.container_id, m]));
    const rows = (res.containers || []).map((c) => {
      const m = byID.get(c.id);
      return h('tr', { 'data-name': c.name },
        h('td', {}, h('a', { href: '#/containers/' + encodeURIComponent(c.name), text: c.name })),
        h('td', { text: c.image }),
        h('td', {}, badge(c.state, 'state-' + c.state)),
        h('td', {}, m ? badge(m.health_status, 'health-' + m.health_status) : '–'),
        h('td', { class: 'num', text: m ? m.performance_score.toFixed(0) : '–' }),
        h('td', { class: 'num', text: m ? pct(m.cpu_usage_percent) : '–' }),
        h('td', { class: 'num hide-narrow', text: m ? mib(m.memory_usage_mb) : '–' }));
    });
    replace(body, rows.length ? rows : h('tr', {}, h('td', { colspan: 7, class: 'muted', text: 'No containers.' })));
    note.textContent = samples.taken ? `Scores, CPU and memory from the server's sample of ${ago(samples.taken)}; the list refreshes every 5 s.` : 'The list refreshes every 5 s.';
  }
  all.addEventListener('change', () => load().catch((e) => ctx.notify(e.message, true)));
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return () => clearInterval(timer);
}

async function detail(main, name, ctx) {
  const path = '/v1/containers/' + api.seg(name);
  const title = h('h1', {}, 'Container ', h('span', { text: name }));
  const facts = h('dl', { class: 'kv', id: 'facts' });
  const state = h('span', { id: 'state' });
  const buttons = h('div', { class: 'row', id: 'actions' });
  const cpu = lineChart({ label: 'CPU', unit: ' %', series: ['CPU'] });
  const mem = lineChart({ label: 'Memory', unit: ' MiB', series: ['used'] });
  const net = lineChart({ label: 'Network', unit: ' KiB/s', series: ['received', 'sent'] });
  cpu.el.id = 'cpu-chart';
  mem.el.id = 'memory-chart';
  net.el.id = 'network-chart';
  const score = h('p', { id: 'score', class: 'muted' });
  const logs = h('pre', { class: 'log', id: 'logs', tabindex: '0', 'aria-label': 'Logs of ' + name, 'aria-live': 'off' });
  main.append(
    h('p', {}, h('a', { href: '#/containers', text: '← Containers' })),
    title,
    h('div', { class: 'row spread' }, h('p', {}, 'State: ', state), buttons),
    h('section', { 'aria-labelledby': 'live-h' }, h('h2', { id: 'live-h', text: 'Live' }), score, h('div', { class: 'grid' }, cpu.el, mem.el, net.el)),
    h('section', { class: 'panel', 'aria-labelledby': 'facts-h' }, h('h2', { id: 'facts-h', text: 'Configuration' }), facts),
    h('section', { 'aria-labelledby': 'logs-h' }, h('h2', { id: 'logs-h', text: 'Logs' }), logs));

  async function inspect() {
    const res = await api.get(path);
    const d = res.details || {};
    const st = (d.state && d.state.status) || res.status;
    replace(state, badge(st, 'state-' + st));
    state.dataset.state = st;
    replace(facts,
      h('dt', { text: 'Image' }), h('dd', { text: d.image || '–' }),
      h('dt', { text: 'ID' }), h('dd', {}, h('code', { text: (d.id || '').slice(0, 12) })),
      h('dt', { text: 'Command' }), h('dd', {}, h('code', { text: (d.command || []).join(' ') || '–' })),
      h('dt', { text: 'Created' }), h('dd', { text: d.created ? new Date(d.created).toLocaleString() : '–' }),
      h('dt', { text: 'Restarts' }), h('dd', { text: String(d.restart_count ?? '–') }),
      h('dt', { text: 'Memory limit' }), h('dd', { text: d.memory_limit_bytes ? mib(d.memory_limit_bytes / 1048576) : 'none' }),
      h('dt', { text: 'CPUs' }), h('dd', { text: d.nano_cpus ? String(d.nano_cpus / 1e9) : 'no limit' }),
      h('dt', { text: 'Labels' }), h('dd', {}, Object.entries(d.labels || {}).map(([k, v]) => h('div', {}, h('code', { text: k + '=' + v })))));
    drawButtons(st);
    return st;
  }

  function drawButtons(st) {
    const running = st === 'running' || st === 'restarting';
    const can = ctx.can('operate');
    const act = (op, label, danger, question) => h('button', {
      type: 'button', class: danger ? 'danger' : 'secondary', disabled: !can, 'data-op': op, text: label,
      on: { click: () => operate(op, label, question) } });
    replace(buttons,
      running ? null : act('start', 'Start', false),
      running ? act('stop', 'Stop', true, `Stop ${name}? Its processes get SIGTERM, then SIGKILL after the timeout.`) : null,
      act('restart', 'Restart', false, `Restart ${name}?`),
      act('remove', 'Remove', true, `Remove ${name}? This cannot be undone.${running ? ' It is running: it will be killed.' : ''}`));
  }

  async function operate(op, label, question) {
    if (question && !(await ctx.confirm(label + ' container', question, label))) return;
    for (const b of buttons.querySelectorAll('button')) b.disabled = true;
    try {
      if (op === 'remove') {
        await api.del(api.q(path, { force: 'true' }));
        ctx.notify(`Removed ${name}.`);
        ctx.go('#/containers');
        return;
      }
      await api.post(path + '/' + op);
      ctx.notify(`${label}: done.`);
      await inspect();
    } catch (e) {
      ctx.notify(`${label} failed: ${e.message}`, true);
      await inspect().catch(() => {});
    }
  }

  try {
    await inspect();
  } catch (e) {
    main.append(h('p', { class: 'error-text', role: 'alert', text: e.message }));
    return null;
  }
  let prev = null;
  const stopMetrics = api.stream(path + '/metrics/stream', {
    metrics: (m) => {
      const t = Date.now();
      cpu.push(t, [m.cpu_usage_percent]);
      mem.push(t, [m.memory_usage_mb]);
      if (prev) {
        const dt = Math.max(0.001, (new Date(m.timestamp) - new Date(prev.timestamp)) / 1000);
        net.push(t, [Math.max(0, (m.network_rx_mb - prev.network_rx_mb) * 1024 / dt), Math.max(0, (m.network_tx_mb - prev.network_tx_mb) * 1024 / dt)]);
      }
      prev = m;
      score.textContent = `Performance score ${m.performance_score.toFixed(0)} · health ${m.health_status} · CPU ${pct(m.cpu_usage_percent)} · memory ${mib(m.memory_usage_mb)}${m.memory_limit_mb ? ' of ' + mib(m.memory_limit_mb) : ''}`;
      if (state.dataset.state !== m.status) inspect().catch(() => {});
    },
    error: () => {},
  });
  const lines = [];
  const stopLogs = api.stream(path + '/logs/stream?tail=200', {
    log: (l) => {
      const atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      const span = h('span', { class: l.stream === 'stderr' ? 'stderr' : null, text: l.line + (l.truncated ? ' …' : '') + '\n' });
      logs.append(span);
      lines.push(span);
      while (lines.length > 1000) lines.shift().remove();
      if (atEnd) logs.scrollTop = logs.scrollHeight;
    },
    end: () => { logs.append(h('span', { class: 'muted', text: '— the container stopped —\n' })); },
    error: () => {},
  });
  return () => { stopMetrics(); stopLogs(); };
}
