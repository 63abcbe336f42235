// Images and scans: each image's latest scan from the server's scan history with its findings by severity; an
// image's page with the findings (filtered in the page), the compliance checks and their remediation, the
// evidence attached to its digest, the policy's verdict and signature status, its scan history per digest as a
// trend, and a button to scan it again (followed live).
import { h, replace, when, ago, shortDigest, badge, bytes, scroller } from '../dom.js';
import * as api from '../api.js';
import { barChart, stackBar, trendChart } from '../chart.js';

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'unknown'];
const counts = (sc) => [sc.critical_count, sc.high_count, sc.medium_count, sc.low_count, sc.unknown_count];
const sevParts = (sc) => SEVERITIES.map((sev, i) => ({ name: sev, value: counts(sc)[i] || 0, cls: 'bar-' + sev }));
const imageHref = (image) => '#/images/' + encodeURIComponent(image);

export async function render(main, args, ctx) {
  return args.length ? detail(main, args[0], ctx) : list(main, ctx);
}

async function list(main, ctx) {
  const body = h('tbody');
  const summary = h('div', { id: 'severity-summary' });
  main.append(
    h('h1', { text: 'Images and scans' }),
    scanForm(ctx, (image) => ctx.go(imageHref(image))),
    h('section', { 'aria-labelledby': 'summary-h' }, h('h2', { id: 'summary-h', text: 'Findings of the latest scans' }), summary),
    h('section', { 'aria-labelledby': 'images-h' }, h('h2', { id: 'images-h', text: 'Images' }),
      scroller(h('table', { id: 'images' },
        h('caption', { class: 'visually-hidden', text: 'Scanned images, the most recently scanned first' }),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Image' }), h('th', { scope: 'col', text: 'Findings by severity' }),
          ...SEVERITIES.map((sev) => h('th', { scope: 'col', class: 'num hide-narrow', text: sev[0].toUpperCase() + sev.slice(1) })),
          h('th', { scope: 'col', class: 'hide-narrow', text: 'Threshold' }),
          h('th', { scope: 'col', text: 'Scanned' }), h('th', { scope: 'col', class: 'num hide-narrow', text: 'Scans' }))),
        body))));

  async function load() {
    const res = await api.get('/v1/scans/images?limit=200');
    const images = res.images || [];
    const rows = images.map(({ image, scans, latest }) => h('tr', { 'data-image': image },
      h('td', {}, h('a', { href: imageHref(image), text: image }), latest.image_digest ? h('div', { class: 'muted' }, h('code', { text: shortDigest(latest.image_digest) })) : null),
      h('td', {}, stackBar({ label: 'Findings of ' + image, parts: sevParts(latest) })),
      ...counts(latest).map((n) => h('td', { class: 'num hide-narrow', text: String(n) })),
      h('td', { class: 'hide-narrow' }, latest.policy_passed ? badge('passed', 'ok') : badge('failed', 'bad')),
      h('td', { text: ago(latest.scan_timestamp), title: when(latest.scan_timestamp) }),
      h('td', { class: 'num hide-narrow', text: String(scans) })));
    replace(body, rows.length ? rows : h('tr', {}, h('td', { colspan: 9, class: 'muted', text: 'No scans yet: scan an image above, or with myrmex scan.' })));
    const total = SEVERITIES.map((_, i) => images.reduce((n, im) => n + (counts(im.latest)[i] || 0), 0));
    replace(summary, h('figure', { class: 'panel' },
      h('figcaption', { text: `Findings by severity, over the latest scan of ${images.length} image${images.length === 1 ? '' : 's'}` }),
      barChart({ label: 'Findings by severity', bars: SEVERITIES.map((sev, i) => ({ name: sev, value: total[i], cls: 'bar-' + sev })) })));
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), 15000);
  return () => clearInterval(timer);
}

// scanForm: an image and a scan type, scanned as a job followed live; done(image) when it has succeeded.
function scanForm(ctx, done, image = '', again = false) {
  const can = ctx.can('operate');
  const input = h('input', { id: 'scan-image', name: 'image', type: 'text', required: true, value: image, spellcheck: 'false', autocomplete: 'off', disabled: !can });
  const type = h('select', { id: 'scan-type', name: 'scan_type', disabled: !can },
    h('option', { value: 'full', text: 'full' }), h('option', { value: 'quick', text: 'quick (vulnerabilities only)' }), h('option', { value: 'compliance', text: 'compliance only' }));
  const progress = h('ol', { class: 'muted', id: 'scan-progress', 'aria-live': 'polite' });
  const button = h('button', { type: 'submit', id: 'scan-submit', disabled: !can, text: again ? 'Scan again' : 'Scan' });
  const form = h('form', { class: 'panel', id: 'scan-form', on: { submit: async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    replace(progress);
    try {
      const job = await api.post('/v1/scans', { image_name: input.value.trim(), scan_type: type.value });
      progress.append(h('li', {}, 'Job ', h('a', { href: '#/jobs/' + encodeURIComponent(job.id) }, h('code', { text: job.id })), ' queued.'));
      const end = await api.follow(job.id, (e) => {
        progress.append(h('li', { text: [e.phase, e.status, e.message].filter(Boolean).join(' · ') || e.op }));
        while (progress.children.length > 8) progress.children[1].remove();
      });
      if (end.state !== 'succeeded') {
        const msg = (end.error && end.error.message) || end.state;
        progress.append(h('li', { class: 'error-text', role: 'alert', text: 'The scan ' + end.state + ': ' + msg }));
        // A scan refused by its threshold keeps its result: it is in the history all the same.
        if (!end.result) return;
      }
      ctx.notify('Scan done.');
      done(end.result ? end.result.image_name : input.value.trim(), end);
    } catch (e) {
      progress.append(h('li', { class: 'error-text', role: 'alert', text: e.message }));
    } finally {
      button.disabled = !can;
    }
  } } },
  h('h2', { class: 'visually-hidden', text: 'Scan an image' }),
  h('div', { class: 'filters' },
    h('div', {}, h('label', { for: 'scan-image', text: 'Image' }), input),
    h('div', {}, h('label', { for: 'scan-type', text: 'Scan type' }), type),
    h('div', {}, button)),
  can ? null : h('p', { class: 'muted', text: 'Scanning needs a token of scope operate.' }),
  progress);
  return form;
}

async function detail(main, image, ctx) {
  const here = location.hash;
  // After a scan from this page: drawn again with it, unless the user has gone elsewhere meanwhile.
  const redraw = () => {
    if (location.hash !== here) return;
    replace(main);
    detail(main, image, ctx).catch((e) => ctx.notify(e.message, true));
  };
  const hist = await api.get(api.q('/v1/scans', { image, limit: 200 }));
  const scans = hist.scans || [];
  main.append(h('p', {}, h('a', { href: '#/images', text: '← Images and scans' })), h('h1', {}, 'Image ', h('span', { id: 'image-name', text: image })));
  if (!scans.length) {
    main.append(h('p', { class: 'muted', text: 'The scan history holds no scan of this image.' }), scanForm(ctx, () => redraw(), image));
    return null;
  }
  const latest = scans[0];
  const { result } = await api.get('/v1/scans/' + api.seg(latest.id));

  const severity = h('section', { 'aria-labelledby': 'sev-h' },
    h('figure', { class: 'panel', id: 'severity-chart' }, h('figcaption', {}, h('h2', { id: 'sev-h', text: 'Findings by severity' })),
      barChart({ label: 'Findings of the latest scan by severity', bars: sevParts(result) })));
  main.append(h('div', { class: 'grid' },
    h('section', { class: 'panel', 'aria-labelledby': 'latest-h' }, h('h2', { id: 'latest-h', text: 'Latest scan' }),
      h('dl', { class: 'kv', id: 'scan-facts' },
        h('dt', { text: 'Scanned' }), h('dd', { text: `${when(result.scan_timestamp)} (${ago(result.scan_timestamp)})` }),
        h('dt', { text: 'As named' }), h('dd', {}, h('code', { text: result.image_name })),
        h('dt', { text: 'Digest' }), h('dd', {}, h('code', { text: result.image_digest || latest.image_digest || 'none (the engine\'s image)' })),
        h('dt', { text: 'Type' }), h('dd', { text: `${result.scan_type} · ${result.scan_tool || ''}` }),
        h('dt', { text: 'Packages' }), h('dd', { text: String(result.packages_scanned) }),
        h('dt', { text: 'Compliance score' }), h('dd', { text: result.compliance_score == null ? 'not checked' : result.compliance_score.toFixed(0) + ' / 100' }),
        h('dt', { text: 'Threshold' }), h('dd', {}, result.policy_passed ? badge('passed', 'ok') : badge('failed', 'bad')),
        h('dt', { text: 'Job' }), h('dd', {}, h('a', { href: '#/jobs/' + encodeURIComponent(latest.id) }, h('code', { text: latest.id })))),
      (result.warnings || []).length ? h('ul', { class: 'muted' }, result.warnings.map((w) => h('li', { text: w }))) : null),
    severity),
  scanForm(ctx, () => redraw(), result.image_name, true));
  main.querySelector('#scan-type').value = ['full', 'quick', 'compliance'].includes(result.scan_type) ? result.scan_type : 'full';

  main.append(findings(result));
  main.append(compliance(result));
  main.append(evidence(result));
  main.append(verdict(ctx, result, latest));
  main.append(history(scans));
  if ((result.recommendations || []).length) {
    main.append(h('section', { 'aria-labelledby': 'rec-h' }, h('h2', { id: 'rec-h', text: 'Recommendations' }),
      h('ul', { class: 'panel' }, result.recommendations.map((r) => h('li', { text: r })))));
  }
  return null;
}

// findings: the table of vulnerabilities, filtered in the page by severity, by "has a fix" and by a text search.
function findings(result) {
  const all = result.vulnerabilities || [];
  const sev = h('select', { id: 'f-severity' }, h('option', { value: '', text: 'any' }), SEVERITIES.map((x) => h('option', { value: x, text: x })));
  const fixed = h('input', { type: 'checkbox', id: 'f-fixed' });
  const search = h('input', { type: 'search', id: 'f-search', spellcheck: 'false', autocomplete: 'off', placeholder: 'CVE-…, package' });
  const body = h('tbody');
  const shown = h('p', { id: 'f-count', class: 'muted', 'aria-live': 'polite' });
  const ids = (v) => [v.cve_id, v.id, ...(v.aliases || [])].filter(Boolean);
  function draw() {
    const text = search.value.trim().toLowerCase();
    const rows = all.filter((v) => (!sev.value || v.severity === sev.value) && (!fixed.checked || v.fixed_version) &&
      (!text || [...ids(v), v.package, v.source_package, v.description].filter(Boolean).some((x) => String(x).toLowerCase().includes(text))));
    replace(body, rows.length ? rows.map((v) => h('tr', { 'data-id': v.cve_id || v.id },
      h('td', {}, v.url && /^https?:\/\//.test(v.url) ? h('a', { href: v.url, rel: 'noreferrer', text: v.cve_id || v.id }) : h('span', { text: v.cve_id || v.id }),
        ids(v).length > 1 ? h('div', { class: 'muted', text: ids(v).slice(1).filter((x) => x !== (v.cve_id || v.id)).join(', ') }) : null),
      h('td', { text: v.package }), h('td', {}, h('code', { text: v.version })),
      h('td', {}, v.fixed_version ? h('code', { text: v.fixed_version }) : h('span', { class: 'muted', text: 'no fix' })),
      h('td', {}, badge(v.severity, 'sev-' + v.severity)),
      h('td', { class: 'hide-narrow', text: v.description || '' })))
      : h('tr', {}, h('td', { colspan: 6, class: 'muted', text: all.length ? 'No finding matches these filters.' : 'No vulnerabilities found.' })));
    shown.textContent = `Showing ${rows.length} of ${all.length} finding${all.length === 1 ? '' : 's'}.`;
  }
  for (const el of [sev, fixed]) el.addEventListener('change', draw);
  search.addEventListener('input', draw);
  draw();
  return h('section', { 'aria-labelledby': 'findings-h' }, h('h2', { id: 'findings-h', text: 'Findings' }),
    h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter the findings' },
      h('div', {}, h('label', { for: 'f-severity', text: 'Severity' }), sev),
      h('div', { class: 'row' }, fixed, h('label', { for: 'f-fixed', text: 'Only with a fix' })),
      h('div', {}, h('label', { for: 'f-search', text: 'Search' }), search)),
    shown,
    scroller(h('table', { id: 'findings' },
      h('caption', { class: 'visually-hidden', text: 'Vulnerabilities found by the latest scan' }),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'ID' }), h('th', { scope: 'col', text: 'Package' }),
        h('th', { scope: 'col', text: 'Installed' }), h('th', { scope: 'col', text: 'Fixed in' }), h('th', { scope: 'col', text: 'Severity' }),
        h('th', { scope: 'col', class: 'hide-narrow', text: 'Description' }))),
      body)),
    (result.ignored || []).length ? h('p', { class: 'muted', text: `${result.ignored.length} finding(s) ignored by rule: ${result.ignored.map((v) => `${v.cve_id || v.id} (${v.ignore_reason || 'no reason'})`).join('; ')}` }) : null);
}

function compliance(result) {
  const checks = result.compliance || [];
  const failed = checks.filter((c) => !c.passed && !c.ignored).length;
  return h('section', { 'aria-labelledby': 'compliance-h' }, h('h2', { id: 'compliance-h', text: 'Compliance' }),
    checks.length ? h('p', { class: 'muted', text: `${checks.length - failed} of ${checks.length} checks pass.` }) : null,
    checks.length ? scroller(h('table', { id: 'compliance' },
      h('caption', { class: 'visually-hidden', text: 'Compliance checks and their remediation' }),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Check' }), h('th', { scope: 'col', text: 'Level' }),
        h('th', { scope: 'col', text: 'Outcome' }), h('th', { scope: 'col', text: 'Remediation' }))),
      h('tbody', {}, [...checks].sort((a, b) => Number(a.passed) - Number(b.passed)).map((c) => h('tr', { 'data-check': c.id },
        h('td', {}, h('code', { text: c.id }), ' ', c.title, (c.details || []).length ? h('ul', { class: 'muted' }, c.details.slice(0, 10).map((d) => h('li', { text: d }))) : null),
        h('td', { text: c.level }),
        h('td', {}, c.ignored ? badge('ignored', 'warn') : c.passed ? badge('passed', 'ok') : badge('failed', 'bad')),
        h('td', { text: c.passed ? '' : (c.remediation || '') }))))))
      : h('p', { class: 'muted', text: 'This scan ran no compliance checks (a quick scan).' }));
}

function evidence(result) {
  const row = (what, e) => e ? [h('dt', { text: what }), h('dd', {}, h('code', { text: e.digest }), ` · ${e.artifact_type} · ${bytes(e.size)} · attached ${when(e.created)}`)]
    : [h('dt', { text: what }), h('dd', { class: 'muted', text: 'not attached' })];
  return h('section', { 'aria-labelledby': 'evidence-h' }, h('h2', { id: 'evidence-h', text: 'Evidence' }),
    h('div', { class: 'panel' },
      h('dl', { class: 'kv', id: 'evidence' }, row('Scan', result.evidence), row('SBOM', result.sbom_evidence)),
      result.evidence || result.sbom_evidence ? null
        : h('p', { class: 'muted', text: 'Scans are attached to an image\'s digest in its registry (myrmex scan --attach, or a push under a policy): this one was not.' })));
}

// verdict: the policy's verdict on the image, as the history recorded it (a build's or pipeline's gate) and, on
// demand, as the policy would judge it now (POST /v1/policy/evaluate, which changes nothing); the signature
// status is what the policy's images.signatures rule says of it.
function verdict(ctx, result, latest) {
  const out = h('div', { id: 'verdict' });
  const sig = h('p', { id: 'signature' });
  const can = ctx.can('operate');
  const button = h('button', { type: 'button', class: 'secondary', id: 'evaluate', disabled: !can, text: 'Check against the policy now' });
  let hasSignatureRule = null;
  api.get('/v1/policy').then((p) => {
    hasSignatureRule = (p.rules || []).some((r) => r.rule === 'images.signatures');
    sig.textContent = !p.set ? 'Signature: the server holds no policy, so no signature is required or verified.'
      : hasSignatureRule ? 'Signature: the policy requires one; check the image against the policy to verify it.'
        : 'Signature: the policy requires none, so none is verified.';
  }).catch(() => {});
  button.addEventListener('click', async () => {
    button.disabled = true;
    replace(out, h('p', { class: 'muted', text: 'Checking…' }));
    try {
      const gate = result.image_digest ? 'apply' : 'create';
      const v = await api.post('/v1/policy/evaluate', { image_name: result.image_name, gate });
      const sigs = (v.violations || []).filter((x) => x.rule === 'images.signatures');
      replace(out,
        h('p', {}, v.allowed ? badge('allowed', 'ok') : badge(v.mode === 'warn' ? 'warned' : 'refused', v.mode === 'warn' ? 'warn' : 'bad'),
          ` at the ${v.gate} gate (${v.mode})`, v.policy ? ` by ${v.policy}` : ''),
        (v.violations || []).length ? h('ul', {}, v.violations.slice(0, 50).map((x) => h('li', {}, h('code', { text: x.rule }), ' ', x.finding))) : null,
        (v.warnings || []).length ? h('ul', { class: 'muted' }, v.warnings.map((w) => h('li', { text: w }))) : null);
      if (hasSignatureRule) {
        sig.textContent = sigs.length ? 'Signature: not verified — ' + sigs.map((x) => x.finding).join('; ')
          : v.mode === 'off' ? 'Signature: not checked (the gate is off).' : 'Signature: verified by the policy\'s keys.';
      }
    } catch (e) {
      replace(out, h('p', { class: 'error-text', role: 'alert', text: e.message }));
    } finally {
      button.disabled = !can;
    }
  });
  return h('section', { 'aria-labelledby': 'policy-h' }, h('h2', { id: 'policy-h', text: 'Policy and signature' }),
    h('div', { class: 'panel' },
      h('p', { id: 'recorded-verdict' }, latest.policy_verdict
        ? ['At its ', latest.job_kind, '\'s gate the policy said ', badge(latest.policy_verdict, latest.policy_verdict === 'allowed' ? 'ok' : 'bad'), '.']
        : 'No gate of the policy held this scan (a scan job, or no policy).'),
      sig,
      h('div', { class: 'row' }, button, can ? null : h('span', { class: 'muted', text: 'Needs a token of scope operate.' })),
      out));
}

// history: the image's scans per digest, each digest's findings over time as a trend and a table.
function history(scans) {
  const byDigest = new Map();
  for (const sc of scans) {
    const k = sc.image_digest || '';
    if (!byDigest.has(k)) byDigest.set(k, []);
    byDigest.get(k).push(sc);
  }
  const series = SEVERITIES.map((sev) => ({ name: sev, cls: 'sev-' + sev }));
  const groups = [...byDigest.entries()].slice(0, 10).map(([digest, list], i) => {
    const name = digest ? shortDigest(digest) : 'the engine\'s image (no digest)';
    return h('section', { class: 'digest', 'data-digest': digest, 'aria-labelledby': 'digest-h' + i },
      h('h3', { id: 'digest-h' + i }, digest ? ['Digest ', h('code', { text: name, title: digest })] : name),
      trendChart({ label: `Findings over time, ${name}`, series,
        points: list.map((sc) => ({ t: new Date(sc.scan_timestamp), values: counts(sc) })) }),
      scroller(h('table', { class: 'history' },
        h('caption', { class: 'visually-hidden', text: `Scans of ${name}, newest first` }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Scanned' }), h('th', { scope: 'col', text: 'By' }),
          ...SEVERITIES.map((sev) => h('th', { scope: 'col', class: 'num', text: sev })),
          h('th', { scope: 'col', class: 'hide-narrow', text: 'Verdict' }))),
        h('tbody', {}, list.map((sc) => h('tr', { 'data-scan': sc.id },
          h('td', {}, h('a', { href: '#/jobs/' + encodeURIComponent(sc.id), text: when(sc.scan_timestamp) })),
          h('td', { text: `${sc.job_kind} (${sc.scan_type})` }),
          ...counts(sc).map((n) => h('td', { class: 'num', text: String(n) })),
          h('td', { class: 'hide-narrow', text: sc.policy_verdict || '–' })))))));
  });
  return h('section', { id: 'history', 'aria-labelledby': 'history-h' }, h('h2', { id: 'history-h', text: 'Scan history' }),
    byDigest.size > 10 ? h('p', { class: 'muted', text: `The ten digests scanned last of ${byDigest.size}.` }) : null, groups);
}
