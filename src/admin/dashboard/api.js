// @ts-check
// The admin API: every request carries the operators' token, kept in this tab's sessionStorage.

export const TOKEN_KEY = 'sagachart.adminToken';

/** @type {(message: string) => void} */
let unauthorized = () => undefined;
/** What to do when the API answers 401 (ask for the token again). @param {(message: string) => void} fn */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<any>}
 */
export async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}` } });
  const body = await res.json().catch(() => null);
  if (res.ok) return body;
  const error = new ApiError(res.status, body?.error?.code ?? 'HTTP', body?.error?.message ?? `${res.status} ${res.statusText}`);
  if (res.status === 401) unauthorized(error.message);
  throw error;
}

/** @param {string} uuid @param {string} action @param {{ step?: string, service?: string, note?: string }} body */
export const act = (uuid, action, body) =>
  api(`/admin/api/executions/${encodeURIComponent(uuid)}/${action}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

// ------------------------------------------------------------------------------------------------
// Live events: /admin/api/events read with fetch (EventSource cannot send the token), parsed as
// server-sent events, and reconnected with a doubling backoff when the stream ends.

export const events = (() => {
  /** @type {Map<string, Set<(data: any) => void>>} */
  const listeners = new Map();
  const live = /** @type {HTMLElement} */ (document.getElementById('live'));
  /** @type {AbortController | null} */
  let controller = null;
  let backoff = 500;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retry;

  /** @param {string} type @param {unknown} data */
  const emit = (type, data) => listeners.get(type)?.forEach((fn) => fn(data));
  /** @param {string} state @param {string} text */
  const show = (state, text) => ((live.className = `live ${state}`), (live.textContent = text));

  /** @param {string} block */
  function dispatch(block) {
    let type = 'message';
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) type = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (!data.length) return;
    try {
      emit(type, JSON.parse(data.join('\n')));
    } catch {
      // Not JSON: nothing here sends that.
    }
  }

  async function connect() {
    const mine = new AbortController();
    controller = mine;
    try {
      const res = await fetch('/admin/api/events', { headers: { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}` }, signal: mine.signal });
      if (res.status === 401) {
        const body = await res.json().catch(() => null);
        unauthorized(body?.error?.message ?? 'the token is wrong');
        return;
      }
      if (!res.ok || !res.body) throw new Error(`${res.status}`);
      show('on', 'live');
      backoff = 500;
      emit('open', null);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const blocks = buffer.split(/\r?\n\r?\n/);
        buffer = blocks.pop() ?? '';
        blocks.forEach(dispatch);
      }
    } catch {
      // Ended or refused: reconnect below, unless stopped.
    }
    if (controller !== mine) return;
    show('off', `reconnecting in ${(backoff / 1000).toFixed(1)} s`);
    retry = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 15_000);
  }

  return {
    start() {
      if (!controller) void connect();
    },
    stop() {
      clearTimeout(retry);
      const c = controller;
      controller = null;
      c?.abort();
      show('off', 'offline');
    },
    /** @param {string} type @param {(data: any) => void} fn @returns {() => void} */
    on(type, fn) {
      const set = listeners.get(type) ?? new Set();
      listeners.set(type, set.add(fn));
      return () => set.delete(fn);
    },
  };
})();
