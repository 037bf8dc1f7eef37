import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Saga, sagaDiagram, SagaRequest } from '../../src/index.js';
import { until } from '../support/harness.js';
import { ROOT, runScript } from '../support/run-script.js';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

describe('the README quickstart', () => {
  it('shows examples/quickstart/main.ts verbatim, and the file runs as the README says', async () => {
    const source = readFileSync(join(ROOT, 'examples/quickstart/main.ts'), 'utf8').trimEnd();
    expect(readme).toContain('```ts\n' + source + '\n```');
    const { stdout, code } = await runScript('examples/quickstart/main.ts');
    expect(code).toBe(0);
    const shown = /It prints:\n\n```text\n([\s\S]*?)\n```/.exec(readme)?.[1];
    expect(stdout.trimEnd()).toBe(shown);
  });

  it('shows the compiled chart of the quickstart saga', async () => {
    // The same structure as the quickstart (kinds, names, hooks) hashes to the same machine id.
    const shape = new Saga('create-order')
      .localStep('validate')
      .onExecute(() => undefined)
      .remoteStep('reserve-stock')
      .onExecute(() => new SagaRequest('x', {}))
      .onSuccess(() => undefined)
      .onFailure(() => undefined)
      .remoteStep('charge')
      .onExecute(() => undefined)
      .commit();
    const diagram = /```mermaid\n([\s\S]*?)\n```/.exec(readme)?.[1];
    expect(diagram).toBe(sagaDiagram(shape));
    const { stdout } = await runScript('examples/quickstart/main.ts');
    expect(stdout.split('\n')[0]).toBe(`saga ${shape.id}`);
  });
});

interface Story {
  orderId: string;
  error: { step: string; code: string } | null;
  steps: Array<{ step: string; status: string; compensated: boolean }>;
  participants: string[];
}

describe('the order-saga demo (npm start)', () => {
  it('runs a mix of orders and ends with a summary that adds up', async () => {
    // Step timeouts ×3: the demo's 1 s courier timeout must fire for the courier that never answers
    // only, also on a loaded machine.
    const { stdout, code } = await runScript('examples/order-saga/main.ts', ['--orders', '20', '--concurrency', '4'], 60_000, { DEMO_TIMEOUT_SCALE: '3', SAGACHART_DEMO_DIR: demoDir() });
    expect(code).toBe(0);
    const line = stdout.split('\n').find((l) => l.startsWith('SUMMARY '));
    expect(line, stdout).toBeDefined();
    const summary = JSON.parse(line!.slice('SUMMARY '.length)) as {
      orders: number;
      byStatus: Record<string, number>;
      byCause: Record<string, number>;
      declined: Story;
      timedOut: Story;
      refusedCommit: Story;
      committed: Story;
    };
    // Orders 5, 10, 15, 20 are declined at payment; order 7's courier never answers; inventory
    // votes no on committing order 11's stock, under audit.
    expect(summary.orders).toBe(20);
    expect(summary.byStatus).toEqual({ finished: 14, errored: 6 });
    expect(summary.byCause).toEqual({
      'charge: SAGA_PARTICIPANT_REJECTED': 4,
      'shipping/express-shipping/book-courier: SAGA_STEP_TIMEOUT': 1,
      'two-phase commit: SAGA_COMMIT_FAILED': 1,
    });
    // A rollback ends by rejecting the transaction at inventory, which holds its changes under it.
    expect(summary.declined.participants).toEqual(['inventory.reserve', 'inventory.release', 'inventory.reject']);
    expect(summary.declined.steps.find((s) => s.step === 'reserve-stock')).toEqual({ step: 'reserve-stock', status: 'finished', compensated: true });
    expect(summary.timedOut.orderId).toBe('order-007-slow');
    expect(summary.timedOut.participants).toEqual(['inventory.reserve', 'payment.charge', 'payment.refund', 'inventory.release', 'inventory.reject']);
    expect(summary.refusedCommit.orderId).toBe('order-011');
    expect(summary.refusedCommit.participants).toEqual([
      'inventory.reserve',
      'payment.charge',
      'shipping.standard',
      'inventory.vote no',
      'shipping.cancel',
      'payment.refund',
      'inventory.release',
      'inventory.reject',
    ]);
    expect(summary.committed.participants).toEqual(['inventory.reserve', 'payment.charge', 'shipping.standard', 'inventory.vote yes', 'inventory.commit']);
    expect(stdout).toContain('Executions by status:');
  });

  it('takes its participant processes with it when it is killed with SIGKILL', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/order-saga/main.ts', '--orders', '100000', '--concurrency', '2'], {
      cwd: ROOT,
      env: { ...process.env, SAGACHART_DEMO_DIR: demoDir() },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await until(() => /\d+\/100000 done|orders .*\d+\/100000/.test(out), 'the demo runs orders', 30_000);
    const pids = /PARTICIPANTS ([\d,]+)/.exec(out)![1]!.split(',').map(Number);
    expect(pids).toHaveLength(3);
    child.kill('SIGKILL');
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await until(() => pids.every((pid) => !alive(pid)), 'every participant process has exited', 10_000);
  });
});

/** A store directory of the demo's own for each test run, removed afterwards. */
function demoDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sagachart-demo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
