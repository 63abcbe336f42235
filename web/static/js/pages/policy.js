// Policy: the policy in force (its gates and rules), and its refusals — counted by rule (a chart) and by image,
// and the latest ones, filtered by rule or image.
import { h, replace, when, ago, badge, scroller } from '../dom.js';
import * as api from '../api.js';
import { barChart } from '../chart.js';

const modeClass = { enforce: 'bad', warn: 'warn', off: 'muted' };

export async function render(main, args, ctx) {
  const inForce = h('section', { id: 'policy', 'aria-labelledby': 'policy-h' });
  const byRule = h('figure', { class: 'panel', id: 'by-rule' });
  const byImage = h('tbody');
  const latest = h('tbody');
  const rule = h('select', { id: 'r-rule' }, h('option', { value: '', text: 'any' }));
  const image = h('select', { id: 'r-image' }, h('option', { value: '', text: 'any' }));
  const count = h('p', { class: 'muted', id: 'r-count', 'aria-live': 'polite' });
  main.append(h('h1', { text: 'Policy' }), inForce,
    h('section', { 'aria-labelledby': 'refusals-h' }, h('h2', { id: 'refusals-h', text: 'Refusals' }),
      h('p', { class: 'muted', text: 'Every request, job and admission review the policy refused, kept as long as the jobs are.' }),
      byRule,
      h('h3', { text: 'By image' }),
      scroller(h('table', { id: 'by-image' },
        h('caption', { class: 'visually-hidden', text: 'Refusals by image, the most refused first' }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Image' }), h('th', { scope: 'col', class: 'num', text: 'Refusals' }),
          h('th', { scope: 'col', text: 'Rules' }), h('th', { scope: 'col', class: 'hide-narrow', text: 'Last' }))),
        byImage)),
      h('h3', { text: 'Latest' }),
      h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter the latest refusals' },
        h('div', {}, h('label', { for: 'r-rule', text: 'Rule' }), rule),
        h('div', {}, h('label', { for: 'r-image', text: 'Image' }), image)),
      count,
      scroller(h('table', { id: 'refusals' },
        h('caption', { class: 'visually-hidden', text: 'The latest refusals, newest first' }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'When' }), h('th', { scope: 'col', text: 'Gate' }),
          h('th', { scope: 'col', text: 'What' }), h('th', { scope: 'col', text: 'Rules broken' }),
          h('th', { scope: 'col', class: 'hide-narrow', text: 'By' }))),
        latest))));

  const p = await api.get('/v1/policy');
  replace(inForce, h('h2', { id: 'policy-h', text: 'In force' }),
    p.set ? h('p', {}, 'The server holds ', h('code', { text: p.file || 'its policy' }), ' at its gates.')
      : h('p', { class: 'muted', text: 'The server holds no policy (myrmex serve --policy): every gate is off and nothing is refused.' }),
    (p.problems || []).length ? h('ul', { class: 'error-text', role: 'alert' }, p.problems.map((x) => h('li', { text: x }))) : null,
    h('div', { class: 'grid' },
      scroller(h('table', { id: 'gates' },
        h('caption', { text: 'Gates' }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Gate' }), h('th', { scope: 'col', text: 'A refusal there' }))),
        h('tbody', {}, Object.entries(p.gates || {}).map(([g, m]) => h('tr', { 'data-gate': g }, h('td', { text: g }),
          h('td', {}, badge(m, modeClass[m] || '')), ))))),
      scroller(h('table', { id: 'rules' },
        h('caption', { text: 'Rules' }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Rule' }), h('th', { scope: 'col', text: 'What it says' }))),
        h('tbody', {}, (p.rules || []).filter((r) => !r.rule.startsWith('gates.')).map((r) => h('tr', { 'data-rule': r.rule },
          h('td', {}, h('code', { text: r.rule })), h('td', { text: r.value }))).concat(
          (p.rules || []).some((r) => !r.rule.startsWith('gates.')) ? [] : [h('tr', {}, h('td', { colspan: 2, class: 'muted', text: 'No rules.' }))]))))));

  async function load() {
    const res = await api.get(api.q('/v1/policy/refusals', { limit: 100, rule: rule.value, image: image.value }));
    const rules = res.by_rule || [];
    const images = res.by_image || [];
    replace(byRule, h('figcaption', { text: 'Refusals by rule (a refusal counts once for each rule it broke)' }),
      rules.length ? barChart({ label: 'Refusals by rule', bars: rules.map((r) => ({ name: r.rule, value: r.refusals, cls: 'bar' })) })
        : h('p', { class: 'muted', text: 'No refusals.' }));
    keepOptions(rule, rules.map((r) => r.rule));
    keepOptions(image, images.map((r) => r.image));
    replace(byImage, images.length ? images.map((im) => h('tr', { 'data-image': im.image },
      h('td', {}, h('button', { type: 'button', class: 'link', text: im.image, 'aria-label': 'Show the refusals of ' + im.image,
        on: { click: () => { image.value = im.image; load().catch((e) => ctx.notify(e.message, true)); } } })),
      h('td', { class: 'num', text: String(im.refusals) }),
      h('td', {}, (im.rules || []).map((r) => h('div', {}, h('code', { text: r.rule }), ` × ${r.refusals}`))),
      h('td', { class: 'hide-narrow', text: ago(im.last), title: when(im.last) })))
      : h('tr', {}, h('td', { colspan: 4, class: 'muted', text: 'No image was refused.' })));
    const list = res.refusals || [];
    replace(latest, list.length ? list.map((r) => h('tr', { 'data-refusal': r.id },
      h('td', { text: when(r.time) }),
      h('td', { text: r.gate }),
      h('td', {}, h('span', { class: 'muted', text: r.source + ' ' }), h('code', { text: r.subject }),
        r.job ? h('div', {}, 'job ', h('a', { href: '#/jobs/' + encodeURIComponent(r.job) }, h('code', { text: r.job }))) : null),
      h('td', {}, h('ul', { class: 'plain' }, (r.violations || []).slice(0, 10).map((v) => h('li', {}, h('code', { text: v.rule }), ' ',
        v.image ? h('strong', { text: v.image }) : v.container ? h('strong', { text: 'container ' + v.container }) : null, v.finding ? ': ' + v.finding : '')),
      (r.violations || []).length > 10 ? h('li', { class: 'muted', text: `and ${r.violations.length - 10} more` }) : null)),
      h('td', { class: 'hide-narrow', text: r.token || '–' })))
      : h('tr', {}, h('td', { colspan: 5, class: 'muted', text: rule.value || image.value ? 'No refusal matches these filters.' : 'No refusals.' })));
    count.textContent = `${list.length} refusal${list.length === 1 ? '' : 's'} shown${rule.value || image.value ? ' (filtered)' : ''}, newest first.`;
  }
  for (const el of [rule, image]) el.addEventListener('change', () => load().catch((e) => ctx.notify(e.message, true)));
  await load();
  const timer = setInterval(() => load().catch(() => {}), 10000);
  return () => clearInterval(timer);
}

// keepOptions makes a filter's options "any" and values, keeping the one chosen.
function keepOptions(select, values) {
  const chosen = select.value;
  const all = [...new Set(chosen ? [chosen, ...values] : values)];
  const now = [...select.options].slice(1).map((o) => o.value);
  if (now.length === all.length && now.every((v, i) => v === all[i])) return; // unchanged: left alone while in use
  replace(select, h('option', { value: '', text: 'any' }), all.map((v) => h('option', { value: v, text: v })));
  select.value = chosen;
}
