/**
 * The dashboard in headless Chromium (Debian's `chromium`, driven by playwright-core): an
 * orchestrator in this process (WebSocketBroker, SagaManager, AdminApi on the broker's server)
 * with inventory and payment participants over WebSocket. The page is given the token, shows
 * executions as they are stored without a reload, draws a compensated execution's chart with its
 * state lit and its compensation rows, and retries a failed compensation from a button.
 * Screenshots go to test/artifacts/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AdminApi,
  connectParticipant,
  InMemorySagaRepository,
  InProcessBroker,
  InspectionStream,
  Saga,
  SagaBusinessError,
  SagaManager,
  SagaStatus,
  SagaStepStatus,
  WebSocketBroker,
  type Participant,
  type SagaExecution,
} from '../../src/index.js';
import { until } from '../support/harness.js';
import { ROOT } from '../support/run-script.js';
import { orderSaga } from '../support/ws-order.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test/artifacts');
const ADMIN_TOKEN = 'operator-token-for-the-browser-test';
const TOKENS = { inventory: 'tok-inventory', payment: 'tok-payment' };

// An order whose id says `declined` is refused by payment (a 400), so the reservation before it is
// released; the release of a `stuck` one fails (a 500) until `releases.work` is set; payment sits
// on the charge of a `held` one until the test lets it go.
const releases = { work: false };
const held: Array<() => void> = [];
const saga = orderSaga('order');

const repository = new InMemorySagaRepository();
let broker: WebSocketBroker;
let manager: SagaManager;
let admin: AdminApi;
let participants: Participant[] = [];
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];
let url: string;

// Without Chromium every test fails (none is skipped) and says how to install it.
const NO_CHROMIUM = `The dashboard test drives Debian's Chromium at ${CHROMIUM}, which is not installed: run \`apt-get install -y chromium\` (as root), then run the test again.`;
beforeEach(() => {
  if (!existsSync(CHROMIUM)) throw new Error(NO_CHROMIUM);
});

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  broker = await WebSocketBroker.listen({ auth: TOKENS, host: '127.0.0.1', port: 0 });
  const inspection = new InspectionStream();
  manager = new SagaManager({ broker, repository, sagas: [saga], inspect: inspection.inspect });
  admin = AdminApi.attach(broker.server, { manager, broker, token: ADMIN_TOKEN, inspection });
  participants = await Promise.all([
    connectParticipant({
      url: broker.url,
      service: 'inventory',
      token: TOKENS.inventory,
      reconnect: false,
      handlers: {
        'inventory.reserve': ({ orderId }: any) => ({ id: `res-${orderId}` }),
        'inventory.release': ({ id }: any) => {
          if (String(id).includes('stuck') && !releases.work) throw new Error('the warehouse system is offline');
        },
      },
    }),
    connectParticipant({
      url: broker.url,
      service: 'payment',
      token: TOKENS.payment,
      reconnect: false,
      handlers: {
        'payment.charge': ({ orderId }: any) => {
          if (String(orderId).includes('declined')) throw new SagaBusinessError('card declined');
          if (String(orderId).includes('held')) return new Promise((resolve) => held.push(() => resolve({ id: 'late' })));
          return { id: `ch-${orderId}` };
        },
      },
    }),
  ]);
  url = `http://127.0.0.1:${admin.port}/admin/`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  // Every request the page makes is answered (the 401 of the wrong token is expected), and nothing
  // is refused by the content security policy.
  page.on('response', (r) => {
    if (r.status() >= 400 && r.status() !== 401) pageErrors.push(`${r.status()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
  });
}, 30_000);

afterAll(async () => {
  for (const release of held.splice(0)) release();
  await browser?.close();
  await Promise.all(participants.map((p) => p.close()));
  await admin?.close();
  await manager?.close();
  await broker?.close();
});

const run = (orderId: string): Promise<SagaExecution> => manager.run(saga, { context: { orderId }, raiseOnError: false });
const text = async (selector: string): Promise<string> => (await page.locator(selector).first().textContent()) ?? '';
/** Waits until the element's text contains `wanted`, and says what it held when it does not. */
async function waitForText(selector: string, wanted: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let shown = '(nothing)';
  while (Date.now() < end) {
    shown = (await page.locator(selector).first().textContent({ timeout: 1_000 }).catch(() => null)) ?? '(nothing)';
    if (shown.includes(wanted)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`"${selector}" never showed "${wanted}"; it shows "${shown}"`);
}
/** Waits until `selector` matches `n` elements. */
// A function, not a string: a string predicate is evaluated with eval in the page, which its CSP refuses.
const waitForCount = (selector: string, n: number) =>
  page.waitForFunction(([sel, count]) => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll(sel).length === count, [selector, n] as const, { timeout: 10_000 });
const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });

describe('the dashboard', () => {
  const made: Record<'ok' | 'declined' | 'stuck', SagaExecution | undefined> = { ok: undefined, declined: undefined, stuck: undefined };

  it('asks for the token, says when it is wrong, and opens with the right one', async () => {
    await page.goto(url);
    await page.waitForSelector('#login:not([hidden])');
    await page.fill('#login input[name=token]', 'not-the-operator-token');
    await page.click('#login button[type=submit]');
    await waitForText('#login-message', 'the token is wrong');
    expect(await page.isVisible('#login')).toBe(true);

    await page.fill('#login input[name=token]', ADMIN_TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#live.on');
    await page.waitForSelector('.counts .count[data-status=finished]');
    expect(await page.isHidden('#login')).toBe(true);
    expect(await text('.infra')).toContain('inventory');
    expect(await text('.infra')).toContain('payment');
    expect(await page.evaluate('sessionStorage.getItem("sagachart.adminToken")')).toBe(ADMIN_TOKEN);
  });

  it('shows executions and counts as they are stored, without a reload', async () => {
    // A mark on the window: a reload would wipe it.
    await page.evaluate('window.notReloaded = true');
    expect(await text('.count[data-status=finished] .n')).toBe('0');

    made.ok = await run('ok-1');
    expect(made.ok.status).toBe(SagaStatus.Finished);
    await page.waitForSelector(`tr[data-uuid="${made.ok.uuid}"]`);
    await waitForText(`tr[data-uuid="${made.ok.uuid}"] .badge`, 'finished');
    await waitForText('.count[data-status=finished] .n', '1');

    made.declined = await run('declined-1');
    made.stuck = await run('declined-stuck-1');
    expect(made.declined.status).toBe(SagaStatus.Errored);
    expect(made.stuck.step('reserve')?.status).toBe(SagaStepStatus.ErroredOnFailure);
    await page.waitForSelector(`tr[data-uuid="${made.stuck.uuid}"]`);
    await waitForText('.count[data-status=errored] .n', '2');
    expect(await page.locator('table.list tbody tr[data-uuid]').count()).toBe(3);
    // Newest first.
    expect(await page.locator('table.list tbody tr[data-uuid]').first().getAttribute('data-uuid')).toBe(made.stuck.uuid);
    expect(await page.evaluate('window.notReloaded')).toBe(true);
    await shot('list');

    // A click on a count filters the list by that status.
    await page.click('.count[data-status=errored]');
    await waitForCount('table.list tbody tr[data-uuid]', 2);
    await page.click('.count[data-status=errored]');
    await waitForCount('table.list tbody tr[data-uuid]', 3);
  });

  it('draws a compensated execution: the errored state lit, each step\u2019s status, the compensation rows', async () => {
    const e = made.declined!;
    await page.click(`tr[data-uuid="${e.uuid}"] a`);
    await page.waitForSelector('.chart .state');
    expect(page.url()).toContain(`#/executions/${e.uuid}`);
    expect(await text('.head h1')).toContain('errored');
    expect(await text('.head dl')).toContain('SAGA_PARTICIPANT_REJECTED');

    // The execution rests in the top-level errored state: it, and the root, are lit; the steps are not.
    expect(await page.locator('.state[data-id="$errored"]').getAttribute('class')).toContain('active');
    expect(await page.locator('.state[data-id="$finished"]').getAttribute('class')).not.toContain('active');
    expect(await page.locator('.state[data-id="reserve"]').getAttribute('class')).not.toContain('active');
    expect(await page.locator('.chart .state.active').count()).toBe(2);
    // Each step's status is a badge on its state, and the sub-state it ended in is marked.
    expect(await text('.state[data-id="reserve"] > .state-label')).toContain('compensated');
    expect(await text('.state[data-id="reserve"] .state.ended')).toBe('compensated');
    expect(await text('.state[data-id="charge"] > .state-label')).toContain('errored-by-on-execute');

    expect(await text('tr.step[data-step="charge"]')).toContain('card declined');
    expect(await text('tr.step[data-step="reserve"] .status')).toContain('compensated');
    expect(await page.locator('tr.compensation').count()).toBe(1);
    expect(await text('tr.compensation[data-step="reserve"] .status')).toBe('compensated');
    expect(await text('.panel.context pre')).toContain('"reservationId": "res-declined-1"');
    expect(await page.locator('.actions button').count()).toBe(0);
    await shot('compensated');
  });

  it('retries a failed compensation from its button and shows the step compensated', async () => {
    const e = made.stuck!;
    await page.click('a[href="#/"]');
    await page.click(`tr[data-uuid="${e.uuid}"] a`);
    await page.waitForSelector('tr.compensation[data-step="reserve"]');
    expect(await text('tr.step[data-step="reserve"] .status')).toBe('errored-on-failure');
    expect(await text('tr.compensation[data-step="reserve"] .status')).toBe('failed');
    expect(await text('tr.compensation[data-step="reserve"]')).toContain('the warehouse system is offline');
    expect(await text('.state[data-id="reserve"] > .state-label')).toContain('errored-on-failure');
    expect(await page.locator('button[data-action=resolve-compensation][data-step=reserve]').count()).toBe(1);
    await shot('compensation-failed');

    releases.work = true;
    await page.click('button[data-action=retry-compensation][data-step=reserve]');
    await waitForText('tr.compensation[data-step="reserve"] .status', 'compensated');
    await waitForText('tr.step[data-step="reserve"] .status', 'compensated');
    expect(await text('tr.step[data-step="reserve"] .status')).not.toContain('errored-on-failure');
    expect(await text('main .flash')).toContain('retry-compensation: done');
    await waitForText('.state[data-id="reserve"] > .state-label', 'compensated');
    expect(await page.locator('button[data-action=retry-compensation]').count()).toBe(0);
    await waitForText('.panel.history table', 'retry-compensation');
    // The retry went through the chart: its inspection events reached the inspector panel.
    await page.waitForSelector('ol.inspector li');
    expect(await text('ol.inspector')).toContain('saga.retry-compensation');
    expect((await manager.get(e.uuid)).step('reserve')?.compensated).toBe(true);
    await shot('compensation-retried');
  });

  it('steers an execution waiting on a participant: retries its step now, then aborts it', async () => {
    const running = run('held-1');
    await page.click('a[href="#/"]');
    await until(() => held.length === 1, 'payment holds the charge');
    const [summary] = (await manager.list({ limit: 1 })).items;
    const uuid = summary!.uuid;
    await waitForText(`tr[data-uuid="${uuid}"] .badge`, 'paused');
    await page.click(`tr[data-uuid="${uuid}"] a`);
    await page.waitForSelector('.chart .state');
    // The step waiting on its answer is lit, its request is in flight, and the buttons fit.
    expect(await page.locator('.state[data-id$=".charge.paused-by-on-execute"]').getAttribute('class')).toContain('active');
    expect(await text('.panel.outbox')).toContain(`${uuid}/execute/1/charge`);
    expect(await page.locator('button[data-action=abort]').count()).toBe(1);
    await shot('paused');

    await page.click('button[data-action=retry-step][data-step=charge]');
    await waitForText('.panel.history table', 'retry-step');
    await waitForText('.panel.outbox', `${uuid}/execute/2/charge`);
    expect(held).toHaveLength(2);

    page.once('dialog', (d) => void d.accept());
    await page.click('button[data-action=abort]');
    await waitForText('.head h1', 'errored');
    await waitForText('.head dl', 'SAGA_ABORTED');
    await waitForText('tr.compensation[data-step="reserve"] .status', 'compensated');
    expect(await page.locator('.state[data-id="$errored"]').getAttribute('class')).toContain('active');
    expect((await running).status).toBe(SagaStatus.Errored);
    await shot('aborted');
  });

  it('shows what is stored of an execution whose saga this orchestrator does not know, and why', async () => {
    // Another orchestrator on the same repository runs a saga this one never registered.
    const elsewhere = new SagaManager({ broker: new InProcessBroker(), repository, sagas: [] });
    const other = new Saga('invoice').localStep('issue').onExecute(() => undefined).commit();
    const e = await elsewhere.run(other, { context: {} });
    await elsewhere.close();
    await page.click('a[href="#/"]');
    await page.waitForSelector(`tr[data-uuid="${e.uuid}"]`);
    await page.click(`tr[data-uuid="${e.uuid}"] a`);
    await waitForText('.panel.unreadable', 'SAGA_NOT_REGISTERED');
    expect(await text('.panel.unreadable h1')).toContain('invoice');
    expect(await text('.panel.unreadable h1')).toContain('finished');
    expect(pageErrors).toEqual([]);
  });
});
