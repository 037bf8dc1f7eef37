// @ts-check
// The sagachart dashboard: plain DOM over the admin API (/admin/api/), no framework and nothing
// fetched from elsewhere. Pages: #/ (the list) and #/executions/<uuid> (one execution).

import { events, onUnauthorized, TOKEN_KEY } from './api.js';
import { executionPage } from './execution-page.js';
import { listPage } from './list-page.js';

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const login = /** @type {HTMLFormElement} */ (document.getElementById('login'));
const forget = /** @type {HTMLButtonElement} */ (document.getElementById('forget'));
/** Stops the page shown (its listeners and timers). @type {() => void} */
let leave = () => undefined;

/** @param {string} [message] */
function askForToken(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  leave();
  leave = () => undefined;
  events.stop();
  main.replaceChildren();
  forget.hidden = true;
  login.hidden = false;
  const note = /** @type {HTMLElement} */ (document.getElementById('login-message'));
  note.hidden = !message;
  note.textContent = message ?? '';
  /** @type {HTMLInputElement} */ (login.elements.namedItem('token')).focus();
}

login.addEventListener('submit', (e) => {
  e.preventDefault();
  const input = /** @type {HTMLInputElement} */ (login.elements.namedItem('token'));
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = '';
  start();
});
forget.addEventListener('click', () => askForToken());
onUnauthorized(askForToken);

/** Shows the page the hash names: #/ or #/executions/<uuid>. */
function route() {
  if (!sessionStorage.getItem(TOKEN_KEY)) return askForToken();
  leave();
  const m = /^#\/executions\/(.+)$/.exec(location.hash);
  leave = m ? executionPage(main, decodeURIComponent(m[1] ?? '')) : listPage(main);
  window.scrollTo(0, 0);
}

function start() {
  login.hidden = true;
  forget.hidden = false;
  events.start();
  route();
}

window.addEventListener('hashchange', route);
if (sessionStorage.getItem(TOKEN_KEY)) start();
else askForToken();
