// @ts-check
// The list page: counts per status, filters, pages, the services connected and requests in flight.

import { api, events } from './api.js';
import { badge, coalesce, h, time } from './dom.js';

/** @typedef {import('./types.js').Overview} Overview */
/** @typedef {import('./types.js').Summary} Summary */
/** @typedef {import('./types.js').StoreEvent} StoreEvent */

const STATUSES = ['created', 'running', 'paused', 'finished', 'errored'];
const PAGE_SIZE = 25;

/** @param {HTMLElement} root @returns {() => void} */
export function listPage(root) {
  const filters = { status: '', saga: '', since: '' };
  /** @type {Array<string | null>} */
  const cursors = [null];
  /** @type {{ items: Summary[], cursor: string | null }} */
  let page = { items: [], cursor: null };
  /** @type {Overview | null} */
  let overview = null;

  const counts = h('div', { class: 'counts' });
  const infra = h('div', { class: 'infra' });
  const sagaSelect = h('select', { name: 'saga', onchange: () => setFilter('saga', /** @type {HTMLSelectElement} */ (sagaSelect).value) }, h('option', { value: '' }, 'every saga'));
  const statusSelect = h(
    'select',
    { name: 'status', onchange: () => setFilter('status', /** @type {HTMLSelectElement} */ (statusSelect).value) },
    h('option', { value: '' }, 'every status'),
    STATUSES.map((s) => h('option', { value: s }, s)),
  );
  const since = h('input', { type: 'datetime-local', name: 'since', step: 1, onchange: () => setFilter('since', /** @type {HTMLInputElement} */ (since).value) });
  const rows = h('tbody');
  const pager = h('div', { class: 'pager' });
  const failure = h('p', { class: 'flash error', role: 'alert', hidden: true });
  root.replaceChildren(
    h('section', {}, counts, infra),
    h('section', {}, h('form', { class: 'filters', onsubmit: (/** @type {Event} */ e) => e.preventDefault() }, h('label', {}, 'Status ', statusSelect), h('label', {}, 'Saga ', sagaSelect), h('label', {}, 'Created since ', since))),
    failure,
    h('table', { class: 'list' }, h('thead', {}, h('tr', {}, ['Execution', 'Saga', 'Status', 'Created', 'Updated', 'Deadline'].map((t) => h('th', {}, t)))), rows),
    pager,
  );

  /** A click on a count filters by its status (again: every status). @param {string} status */
  function chooseStatus(status) {
    /** @type {HTMLSelectElement} */ (statusSelect).value = status;
    setFilter('status', status);
  }

  /** @param {'status' | 'saga' | 'since'} key @param {string} value */
  function setFilter(key, value) {
    filters[key] = value;
    cursors.splice(1);
    void loadPage();
    if (key === 'status') void loadOverview().catch(() => undefined);
  }

  function query() {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (filters.status) q.set('status', filters.status);
    if (filters.saga) q.set('saga', filters.saga);
    if (filters.since) q.set('createdAfter', String(new Date(filters.since).getTime()));
    const cursor = cursors.at(-1);
    if (cursor) q.set('cursor', cursor);
    return q;
  }

  async function loadOverview() {
    overview = await api('/admin/api/overview');
    const o = /** @type {Overview} */ (overview);
    counts.replaceChildren(
      ...STATUSES.map((s) =>
        h('button', { type: 'button', class: `count s-${s}${filters.status === s ? ' chosen' : ''}`, 'data-status': s, onclick: () => chooseStatus(filters.status === s ? '' : s) },
          h('span', { class: 'n' }, o.counts ? String(o.counts[s] ?? 0) : '?'), h('span', {}, s)),
      ),
    );
    const b = o.broker;
    infra.replaceChildren(
      h('span', {}, `${o.manager.live} in memory`),
      ...(b
        ? [h('span', {}, `${b.inflight} ${b.inflight === 1 ? 'request' : 'requests'} in flight, ${b.held} held`), h('span', {}, 'services: ', b.services.length ? b.services.map((s) => h('span', { class: 'chip' }, s)) : h('em', {}, 'none connected'))]
        : []),
    );
    const names = [...new Set(o.sagas.map((s) => s.name))];
    if (sagaSelect.children.length !== names.length + 1) sagaSelect.replaceChildren(h('option', { value: '' }, 'every saga'), ...names.map((n) => h('option', { value: n, selected: n === filters.saga }, n)));
  }

  async function loadPage() {
    try {
      page = await api(`/admin/api/executions?${query()}`);
      failure.hidden = true;
    } catch (err) {
      failure.hidden = false;
      failure.textContent = /** @type {Error} */ (err).message;
    }
    renderRows();
  }

  function renderRows() {
    rows.replaceChildren(
      ...(page.items.length
        ? page.items.map((s) =>
            h('tr', { 'data-uuid': s.uuid }, h('td', {}, h('a', { href: `#/executions/${encodeURIComponent(s.uuid)}`, class: 'mono' }, s.uuid)), h('td', {}, s.sagaName),
              h('td', {}, badge(s.status)), h('td', {}, time(s.createdAt)), h('td', {}, time(s.updatedAt)), h('td', {}, time(s.deadline))),
          )
        : [h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No executions match.'))]),
    );
    pager.replaceChildren(
      h('button', { type: 'button', disabled: cursors.length === 1, onclick: () => (cursors.pop(), loadPage()) }, '← Newer'),
      h('span', {}, `page ${cursors.length}`),
      h('button', { type: 'button', disabled: !page.cursor, onclick: () => (cursors.push(page.cursor), loadPage()) }, 'Older →'),
    );
  }

  const refreshCounts = coalesce(() => void loadOverview().catch(() => undefined), 250);
  const refreshPage = coalesce(() => void loadPage(), 400);
  /** @param {StoreEvent} e */
  function onStore(e) {
    if (e.outcome !== 'stored') return;
    refreshCounts();
    const row = page.items.find((s) => s.uuid === e.uuid);
    if (row) {
      if (e.version <= row.version) return;
      Object.assign(row, { status: e.status, version: e.version, updatedAt: Date.now() });
    } else {
      // A new execution shows at once on the first page when it passes the filters; the reload fills in the rest.
      if (cursors.length > 1 || (filters.status && filters.status !== e.status) || (filters.saga && filters.saga !== e.sagaName)) return;
      const now = Date.now();
      page.items.unshift({ uuid: e.uuid, sagaName: e.sagaName, definitionHash: '', version: e.version, status: e.status, createdAt: now, updatedAt: now, deadline: null });
      page.items.splice(PAGE_SIZE);
    }
    renderRows();
    refreshPage();
  }

  const off = [events.on('store', onStore), events.on('open', () => (refreshCounts(), refreshPage()))];
  void loadOverview().catch(() => undefined);
  void loadPage();
  return () => {
    off.forEach((stop) => stop());
    refreshCounts.cancel();
    refreshPage.cancel();
  };
}
