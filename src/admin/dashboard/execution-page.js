// @ts-check
// One execution's page: header, actions, statechart, steps, context, transaction, history,
// what it waits on, and the live inspection events.

import { act, api, ApiError, events } from './api.js';
import { badge, coalesce, duration, errorText, h, table, time } from './dom.js';
import { chartNode, legend } from './statechart.js';

/** @typedef {import('./types.js').Chart} Chart */
/** @typedef {import('./types.js').Child} Child */
/** @typedef {import('./types.js').Details} Details */
/** @typedef {import('./types.js').Execution} Execution */
/** @typedef {import('./types.js').InspectEvent} InspectEvent */
/** @typedef {import('./types.js').StoreEvent} StoreEvent */
/** @typedef {import('./types.js').Unreadable} Unreadable */

/** @type {Map<string, Promise<Chart>>} */
const charts = new Map();

/** @param {HTMLElement} root @param {string} uuid @returns {() => void} */
export function executionPage(root, uuid) {
  const flash = h('p', { class: 'flash', role: 'status', hidden: true });
  const body = h('div', {}, h('p', { class: 'empty' }, 'Loading…'));
  const inspected = h('ol', { class: 'inspector' });
  root.replaceChildren(
    h('p', {}, h('a', { href: '#/' }, '← executions')),
    flash,
    body,
    h('section', { class: 'panel inspect' }, h('h2', {}, 'Inspector ', h('small', {}, 'live inspection events of this execution (what the Stately inspector is sent)')), inspected),
  );
  let seq = 0;

  /** @param {string} text @param {'ok' | 'error'} kind */
  const say = (text, kind) => ((flash.hidden = false), (flash.className = `flash ${kind}`), (flash.textContent = text));

  async function load() {
    const mine = ++seq;
    try {
      /** @type {Details | Unreadable} */
      const d = await api(`/admin/api/executions/${encodeURIComponent(uuid)}`);
      if (d.execution === null) {
        if (mine === seq) body.replaceChildren(unreadable(d));
        return;
      }
      if (d.chart && !charts.has(d.chart)) charts.set(d.chart, api(d.chart));
      const chart = d.chart ? await /** @type {Promise<Chart>} */ (charts.get(d.chart)).catch(() => null) : null;
      if (mine === seq) body.replaceChildren(...renderExecution(d, chart, run));
    } catch (err) {
      if (mine !== seq || (err instanceof ApiError && err.status === 401)) return;
      body.replaceChildren(h('p', { class: 'flash error' }, /** @type {Error} */ (err).message));
    }
  }

  /** @param {string} action @param {{ step?: string, service?: string, note?: string }} input @param {HTMLButtonElement} button */
  async function run(action, input, button) {
    button.disabled = true;
    say(`${action}…`, 'ok');
    try {
      const answer = await act(uuid, action, input);
      if (answer.pending) say(`${action}: accepted; the execution has not settled yet.`, 'ok');
      else if (answer.outcome) say(`${action}: done; the execution ended with ${answer.outcome.code}: ${answer.outcome.message}`, 'ok');
      else say(`${action}: done; the execution is ${answer.execution.status}.`, 'ok');
    } catch (err) {
      say(`${action} refused: ${/** @type {Error} */ (err).message}`, 'error');
    }
    button.disabled = false;
    await load();
  }

  const reload = coalesce(() => void load(), 150);
  const off = [
    events.on('store', (/** @type {StoreEvent} */ e) => e.uuid === uuid && reload()),
    events.on('open', reload),
    events.on('inspect', (/** @type {InspectEvent} */ e) => {
      if (e.actor !== uuid) return;
      const what = e.type === '@xstate.event' ? e.event : e.type === '@xstate.snapshot' ? `${JSON.stringify(e.value)}${e.status && e.status !== 'active' ? ` (${e.status})` : ''}` : '';
      inspected.prepend(h('li', {}, h('span', { class: 'when' }, time(Date.now())), h('span', { class: 'kind' }, e.type.replace('@xstate.', '')), h('code', {}, what ?? '')));
      while (inspected.children.length > 200) inspected.lastElementChild?.remove();
    }),
  ];
  void load();
  return () => {
    off.forEach((stop) => stop());
    reload.cancel();
    seq++;
  };
}

/**
 * @param {Details} d
 * @param {Chart | null} chart
 * @param {(action: string, input: { step?: string, service?: string, note?: string }, button: HTMLButtonElement) => void} run
 * @returns {HTMLElement[]}
 */
function renderExecution(d, chart, run) {
  const e = d.execution;
  const field = (/** @type {string} */ name, /** @type {Child | Child[]} */ value, wide = false) => [h('dt', { class: wide && 'wide' }, name), h('dd', { class: wide && 'wide' }, value)];
  return [
    h('section', { class: 'head' },
      h('h1', {}, e.sagaName, ' ', badge(e.status), e.awaitingCommit ? badge('paused', 'awaiting commit') : null),
      h('dl', {},
        field('uuid', h('span', { class: 'mono' }, e.uuid)), field('definition', h('span', { class: 'mono' }, e.definitionHash)),
        field('created', time(e.createdAt)), field('started', time(e.startedAt)), field('finished', time(e.finishedAt)),
        field('user', e.user ?? '—'), field('waits on', e.pausedStep ?? '—'), field('version', String(d.version ?? '—')),
        e.error ? field('error', [errorText(e.error), e.error.step ? ` at ${e.error.step}` : ''], true) : null,
        Object.entries(e.callbackErrors).flatMap(([name, err]) => field(name, errorText(err), true)),
      ),
      h('div', { class: 'actions' }, actionButtons(d, run)),
    ),
    h('section', { class: 'panel statechart' }, h('h2', {}, 'Statechart ', h('small', {}, chart ? chart.machineId : 'not registered with this orchestrator')), chart ? [legend(), h('div', { class: 'chart' }, chartNode(chart.root, new Set(d.active), e.steps))] : null),
    h('section', { class: 'panel steps' }, h('h2', {}, 'Steps'), timeline(e)),
    h('div', { class: 'cols' },
      h('section', { class: 'panel context' }, h('h2', {}, 'Context'), h('pre', { class: 'json' }, JSON.stringify(e.context, null, 2))),
      h('section', { class: 'panel transaction' }, h('h2', {}, 'Transaction ', h('small', {}, e.transaction.phase ? `${e.transaction.phase} under way` : '')), transaction(e)),
    ),
    h('div', { class: 'cols' },
      h('section', { class: 'panel history' }, h('h2', {}, 'History'),
        e.history.length ? table(['action', 'at', 'step', 'note'], e.history.map((x) => [x.action, time(x.at), x.step ?? '', x.note ?? ''])) : h('p', { class: 'empty' }, 'No operator actions or commit decisions.')),
      h('section', { class: 'panel outbox' }, h('h2', {}, 'Waiting on'),
        d.outbox.length ? table(['request', 'target', 'attempt', 'deadline'], d.outbox.map((r) => [h('span', { class: 'mono' }, r.requestId), r.target, String(r.attempt), time(r.deadline)])) : h('p', { class: 'empty' }, 'No requests in flight.'),
        d.timer ? h('p', {}, `Timer at ${time(d.timer.at)}: ${d.timer.event.step} ${d.timer.event.phase}, attempt ${d.timer.event.attempt}`) : h('p', { class: 'empty' }, 'No timer.')),
    ),
  ];
}

/** What the repository holds of an execution this orchestrator cannot read, and why. @param {Unreadable} d */
function unreadable(d) {
  const r = d.record;
  return h('section', { class: 'panel unreadable' },
    h('h1', {}, r.sagaName, ' ', badge(r.status)),
    h('p', { class: 'flash error' }, h('b', {}, d.problem.code), ' ', d.problem.message),
    table(['uuid', 'definition', 'version', 'created', 'updated', 'deadline'], [[h('span', { class: 'mono' }, r.uuid), h('span', { class: 'mono' }, r.definitionHash), String(r.version), time(r.createdAt), time(r.updatedAt), time(d.timer?.at)]]),
    d.outbox.length ? table(['request', 'target', 'attempt', 'deadline'], d.outbox.map((o) => [h('span', { class: 'mono' }, o.requestId), o.target, String(o.attempt), time(o.deadline)])) : null,
  );
}

/** The actions that make sense now; the API still has the last word. */
function actionButtons(/** @type {Details} */ d, /** @type {Parameters<typeof renderExecution>[2]} */ run) {
  const e = d.execution;
  /** @type {HTMLElement[]} */
  const buttons = [];
  /** @param {string} label @param {string} action @param {{ step?: string, service?: string }} input @param {{ confirm?: string, note?: string }} [ask] */
  const add = (label, action, input, ask = {}) =>
    buttons.push(h('button', { type: 'button', 'data-action': action, 'data-step': input.step, 'data-service': input.service, onclick: (/** @type {Event} */ ev) => {
      if (ask.confirm && !window.confirm(ask.confirm)) return;
      const note = ask.note !== undefined ? window.prompt(ask.note) : undefined;
      if (note === null) return;
      run(action, { ...input, ...(note ? { note } : {}) }, /** @type {HTMLButtonElement} */ (ev.currentTarget));
    } }, label));
  if (e.awaitingCommit) {
    add('Commit', 'commit', {});
    add('Reject', 'reject', {}, { confirm: 'Reject this execution? Its steps are compensated.' });
  }
  if (e.status === 'running' || e.status === 'paused') add('Abort', 'abort', {}, { confirm: 'Abort this execution? It is rolled back.' });
  for (const s of e.steps) {
    if (s.status === 'paused-by-on-execute' || s.status === 'paused-on-failure') add(`Retry ${s.path} now`, 'retry-step', { step: s.path });
    if (s.compensation?.error && !s.compensation.resolved && !s.compensated) {
      add(`Retry compensation of ${s.path}`, 'retry-compensation', { step: s.path });
      add(`Resolve compensation of ${s.path}…`, 'resolve-compensation', { step: s.path }, { note: `How was the compensation of ${s.path} dealt with?` });
    }
  }
  const phase = e.transaction.phase;
  if (phase === 'commit' || phase === 'reject') {
    const waited = d.outbox.filter((r) => r.phase === phase).map((r) => r.target);
    for (const service of waited.length ? waited : e.services) add(`Resolve ${phase} at ${service}…`, 'resolve-transaction', { service }, { note: `How was the ${phase} at ${service} dealt with?` });
  }
  return buttons.length ? buttons : [h('span', { class: 'empty' }, 'No action applies now.')];
}

/** A row per step and per compensation, with a bar over the execution's time span. */
function timeline(/** @type {Execution} */ e) {
  const t0 = e.startedAt ?? e.createdAt;
  const span = Math.max(1, (e.finishedAt ?? Date.now()) - t0);
  /** @param {number | null} from @param {number | null} to */
  const bar = (from, to) => {
    if (from === null) return h('div', { class: 'track' });
    const end = to ?? e.finishedAt ?? Date.now();
    const left = ((from - t0) / span) * 100;
    const width = Math.max(0.6, ((end - from) / span) * 100);
    return h('div', { class: 'track' }, h('div', { class: `bar${to === null ? ' open' : ''}`, style: `left:${left.toFixed(2)}%;width:${Math.min(width, 100 - left).toFixed(2)}%` }));
  };
  const since = (/** @type {number | null} */ from, /** @type {number | null} */ to) => (from !== null && to !== null ? duration(to - from) : '');
  /** @type {HTMLElement[]} */
  const rows = [];
  for (const s of e.steps) {
    const depth = s.path.split('/').length - 1;
    rows.push(h('tr', { class: 'step', 'data-step': s.path },
      h('td', { style: `padding-left:${0.5 + depth * 1.2}em` }, h('b', {}, s.name), ' ', h('small', {}, s.kind, s.branch ? ` → ${s.branch}` : '', s.skipped ? ' (skipped)' : '')),
      h('td', { class: 'status' }, badge(s.status), s.compensated ? badge('compensated') : null),
      h('td', {}, String(s.attempts || '')), h('td', {}, time(s.startedAt)), h('td', {}, time(s.finishedAt)), h('td', {}, since(s.startedAt, s.finishedAt)),
      h('td', { class: 'span' }, bar(s.startedAt, s.finishedAt)), h('td', {}, errorText(s.error)),
    ));
    const c = s.compensation;
    if (!c) continue;
    const status = s.compensated ? 'compensated' : c.resolved ? 'resolved' : c.error ? 'failed' : 'compensating';
    rows.push(h('tr', { class: 'compensation', 'data-step': s.path },
      h('td', { style: `padding-left:${1.5 + depth * 1.2}em` }, '↩ compensation'),
      h('td', { class: 'status' }, badge(status === 'failed' ? 'errored-on-failure' : status === 'compensating' ? 'running-on-failure' : 'compensated', status)),
      h('td', {}, String(c.attempts || '')), h('td', {}, time(c.startedAt)), h('td', {}, time(c.finishedAt)), h('td', {}, since(c.startedAt, c.finishedAt)),
      h('td', { class: 'span' }, bar(c.startedAt, c.finishedAt)), h('td', {}, errorText(c.error), c.resolved ? ' (resolved by hand)' : ''),
    ));
  }
  return h('table', { class: 'steps' }, h('thead', {}, h('tr', {}, ['step', 'status', 'attempts', 'started', 'finished', 'took', 'timeline', 'error'].map((t) => h('th', {}, t)))), h('tbody', {}, rows));
}

function transaction(/** @type {Execution} */ e) {
  const phases = /** @type {const} */ (['reserve', 'commit', 'reject']).flatMap((p) => {
    const r = e.transaction[p];
    return r ? [h('div', { class: 'phase' }, h('h3', {}, p, ' ', badge(r.ok ? 'finished' : 'errored', r.ok ? 'ok' : 'failed'), h('small', {}, ` ${time(r.finishedAt)}`)),
      table(['service', 'outcome', 'attempts'], r.parts.map((x) => [x.service, x.outcome, String(x.attempts)])), r.refusal ? h('p', {}, 'refused by ', r.refusal.service, ': ', errorText(r.refusal)) : null)] : [];
  });
  return phases.length ? h('div', {}, phases) : h('p', { class: 'empty' }, `No phase has ended${e.services.length ? ` (services: ${e.services.join(', ')})` : ''}.`);
}
