// api.js: the API under /v1, called with the session's cookie (same origin only). Changes carry the session's
// CSRF token; errors come back as ApiError with the server's error object (its code and message).

let csrf = '';
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, obj) {
    super((obj && obj.message) || 'HTTP ' + status);
    this.status = status;
    this.code = obj && obj.code;
    this.details = obj;
  }
}

// whenSignedOut(fn): fn runs when an answer says the session is gone (401).
export function whenSignedOut(fn) { onSignedOut = fn; }

export function setCSRF(v) { csrf = v || ''; }

// call(method, path, body): the decoded answer. path is under this origin (/v1/…).
export async function call(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  const res = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  const text = await res.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    // Only the server's own refusal (it names its realm) ends the session: a 401 of a registry or a cluster
    // that refused the server's login is an error like another.
    if (res.status === 401 && path !== '/v1/session' && res.headers.get('WWW-Authenticate')) onSignedOut();
    throw new ApiError(res.status, data && data.error);
  }
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body === undefined ? {} : body);
export const del = (path) => call('DELETE', path);

// q(path, params): path with a query string (values encoded; empty ones left out).
export function q(path, params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? path + '?' + s : path;
}

// seg(v): one path segment, encoded.
export const seg = (v) => encodeURIComponent(v);

// stream(path, handlers): Server-Sent Events from path (the cookie goes with them). handlers: {eventName: fn(data)},
// error: fn(). Returns close().
export function stream(path, handlers) {
  const es = new EventSource(path);
  for (const [name, fn] of Object.entries(handlers)) {
    if (name === 'error') continue;
    es.addEventListener(name, (ev) => {
      let data = ev.data;
      try { data = JSON.parse(ev.data); } catch { /* a plain line */ }
      fn(data, ev);
    });
  }
  es.onerror = () => { if (handlers.error) handlers.error(es); };
  return () => es.close();
}

// follow(jobID, onEvent): a job's progress until it ends; resolves with the ended job.
export function follow(jobID, onEvent) {
  return new Promise((resolve, reject) => {
    let done = false;
    const close = stream('/v1/jobs/' + seg(jobID) + '/events', {
      progress: (e) => onEvent && onEvent(e),
      end: (job) => { done = true; close(); resolve(job); },
      error: (es) => {
        if (!done && es.readyState === EventSource.CLOSED) reject(new Error('the job\'s event stream closed'));
      },
    });
  });
}
