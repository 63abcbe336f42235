// app.js: the dashboard's frame — sign-in, the sections, the routes (#/section/…), the confirmation dialog and
// the status messages. Each section is a module under pages/ with render(main, args, ctx) that returns a
// function to stop what it started (streams, timers) when the user goes elsewhere.
import { h, replace } from './dom.js';
import * as api from './api.js';

// The sections, in the navigation's order. scope: the least scope that can use the section's actions.
export const sections = [
  { path: 'containers', title: 'Containers', load: () => import('./pages/containers.js') },
  { path: 'images', title: 'Images and scans', load: () => import('./pages/images.js') },
  { path: 'registries', title: 'Registries', load: () => import('./pages/registries.js') },
  { path: 'deployments', title: 'Deployments', load: () => import('./pages/deployments.js') },
  { path: 'optimizations', title: 'Optimizations', load: () => import('./pages/optimizations.js') },
  { path: 'jobs', title: 'Jobs', load: () => import('./pages/jobs.js') },
  { path: 'policy', title: 'Policy', load: () => import('./pages/policy.js') },
];

const main = document.getElementById('main');
const nav = document.getElementById('sections');
const who = document.getElementById('who');
const signout = document.getElementById('signout');
const menu = document.getElementById('menu');
let session = null;
let stop = null;
let seq = 0;

// ctx is what pages get: the session, and the frame's helpers.
const ctx = {
  get session() { return session; },
  can(scope) {
    const rank = { read: 1, operate: 2, admin: 3 };
    return !!session && rank[session.scope] >= rank[scope];
  },
  confirm,
  notify,
  go(hash) { location.hash = hash; },
};

function notify(text, isError) {
  const box = document.getElementById('status');
  const p = h('p', { class: isError ? 'error' : null, text });
  box.append(p);
  setTimeout(() => p.remove(), isError ? 8000 : 4000);
}

// confirm(title, text, action): the dialog; resolves true when confirmed.
function confirm(title, text, action = 'Confirm') {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = action;
  return new Promise((resolve) => {
    dlg.returnValue = '';
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
  });
}

function drawNav(current) {
  replace(nav, sections.map((sec) => h('li', {},
    h('a', { href: '#/' + sec.path, 'aria-current': sec.path === current ? 'page' : null, text: sec.title }))));
}

function signInForm(message) {
  drawNav('');
  who.textContent = '';
  signout.hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false',
    required: true, 'aria-describedby': 'token-help' });
  const err = h('p', { class: 'error-text', role: 'alert' }, message || '');
  // method=post: even without this script the token would go in a body, never in the URL.
  const form = h('form', { class: 'stack', method: 'post', action: '/v1/session', on: { submit: async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      const s = await api.post('/v1/session', { token: input.value.trim() });
      input.value = '';
      signedIn(s);
    } catch (e) {
      err.textContent = e.message;
      input.focus();
    }
  } } },
  h('label', { for: 'token', text: 'API token' }),
  input,
  h('p', { id: 'token-help', class: 'muted', text: 'A token made with myrmex serve token create. It is exchanged for a session that lasts 12 hours; the page never keeps it.' }),
  h('div', {}, h('button', { type: 'submit', text: 'Sign in' })),
  err);
  replace(main, h('h1', { text: 'Sign in to Myrmex' }), h('div', { class: 'panel' }, form));
  input.focus();
}

function signedIn(s) {
  session = s;
  api.setCSRF(s.csrf_token);
  who.textContent = `${s.name} (${s.scope})`;
  signout.hidden = false;
  route();
}

let moved = false;

async function route() {
  if (stop) { try { stop(); } catch { /* already stopped */ } stop = null; }
  if (!session) return signInForm();
  const hash = location.hash;
  if (!hash.startsWith('#/')) {
    if (!hash) location.replace('#/' + sections[0].path);
    return; // an anchor in the page (#main), not a route
  }
  const parts = hash.slice(2).split('/').map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  const sec = sections.find((x) => x.path === parts[0]);
  if (!sec) {
    drawNav('');
    replace(main, h('h1', { text: 'Not found' }), h('p', {}, 'No section ', h('code', { text: parts[0] }), '.'));
    return;
  }
  drawNav(sec.path);
  nav.parentElement.classList.remove('open');
  menu.setAttribute('aria-expanded', 'false');
  const mine = ++seq;
  document.title = sec.title + ' · Myrmex';
  try {
    const mod = await sec.load();
    if (mine !== seq) return;
    replace(main);
    stop = (await mod.render(main, parts.slice(1), ctx)) || null;
    if (mine !== seq && stop) { stop(); stop = null; }
    // After a move within the dashboard, the keyboard and screen readers start at the new content.
    if (moved) main.focus({ preventScroll: true });
  } catch (e) {
    if (mine !== seq) return;
    replace(main, h('h1', { text: sec.title }), h('p', { class: 'error-text', role: 'alert', text: e.message }));
  }
}

menu.addEventListener('click', () => {
  const open = nav.parentElement.classList.toggle('open');
  menu.setAttribute('aria-expanded', String(open));
});
signout.addEventListener('click', async () => {
  try { await api.del('/v1/session'); } catch { /* signed out anyway */ }
  session = null;
  api.setCSRF('');
  signInForm('Signed out.');
});
api.whenSignedOut(() => {
  session = null;
  signInForm('Your session ended: sign in again.');
});
window.addEventListener('hashchange', () => { moved = true; route(); });

// A session already there (the cookie) signs the page in.
api.get('/v1/session').then(signedIn, () => signInForm());
