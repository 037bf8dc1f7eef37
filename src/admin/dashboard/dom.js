// @ts-check
// Building elements (text stays text: nothing is parsed as HTML) and formatting values.

/** @typedef {import('./types.js').Child} Child */
/** @typedef {import('./types.js').ErrorInfo} ErrorInfo */

/**
 * An element with attributes (`on…` functions become listeners) and children; text stays text.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), /** @type {EventListener} */ (value));
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined && child !== false) el.append(child);
  return el;
}

/** @param {number | null | undefined} ms */
export function time(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const pad = (/** @type {number} */ n, w = 2) => String(n).padStart(w, '0');
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return d.toDateString() === new Date().toDateString() ? clock : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}`;
}

/** @param {number} ms */
export const duration = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`);

/** @param {string} status @param {string} [text] */
export const badge = (status, text = status) => h('span', { class: `badge s-${status}` }, text);

/** @param {ErrorInfo | null | undefined} e */
export const errorText = (e) => (e ? h('span', { class: 'err' }, h('b', {}, e.code), ' ', e.message) : '');

/** Runs `fn` at most once per `ms`, however often it is asked for. @param {() => void} fn @param {number} ms */
export function coalesce(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const run = () => {
    if (timer === undefined) timer = setTimeout(() => ((timer = undefined), fn()), ms);
  };
  run.cancel = () => clearTimeout(timer);
  return run;
}


/** @param {string[]} head @param {Array<Array<Child>>} body */
export const table = (head, body) => h('table', {}, h('thead', {}, h('tr', {}, head.map((t) => h('th', {}, t)))), h('tbody', {}, body.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
