// The Restate contender's service endpoint (a process of its own): an HTTP/2 server hosting a
// Restate SDK service whose handler runs the benchmark saga, and the MiniBroker the benchmark
// participant connects to. Each step is one `ctx.run` around a WebSocket request to the
// participant, so Restate journals every step's result before the saga goes on; on the 400 of
// step 3 the handler runs the compensations of steps 2 and 1, each in its own `ctx.run`.
// Usage: restate-endpoint.ts <port>. Prints `READY <broker url>` once it listens on 127.0.0.1.
import { createServer } from 'node:http2';
import type { Context } from '@restatedev/restate-sdk';
import { MiniBroker } from '../lib/mini-broker.js';
import { requestContent } from '../lib/workload.js';

// restate-sdk 1.17 calls Promise.withResolvers (ES2024), which Node 20 lacks.
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}
const PromiseWith = Promise as PromiseConstructor & { withResolvers?: <T>() => Resolvers<T> };
if (typeof PromiseWith.withResolvers !== 'function') {
  PromiseWith.withResolvers = <T>(): Resolvers<T> => {
    let resolve!: Resolvers<T>['resolve'];
    let reject!: Resolvers<T>['reject'];
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
// Loaded after the polyfill, so that it is in place whenever the SDK runs.
const restate = await import('@restatedev/restate-sdk');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: restate-endpoint.ts <port>');

/** The handler's input: which saga, whether it fails at step 3, and its ~1 KB state. */
export interface SagaInput {
  i: number;
  fail: boolean;
  state: unknown;
}
export type SagaOutput = 'finished' | 'compensated' | 'error';

const broker = await MiniBroker.listen();

const benchSaga = restate.service({
  name: 'BenchSaga',
  handlers: {
    run: async (ctx: Context, input: SagaInput): Promise<SagaOutput> => {
      const { i, fail } = input;
      const uuid = `restate-${i}`;
      const step = (name: string, target: string) => ctx.run(name, () => broker.request(uuid, name, target, requestContent(i, name, fail)));
      if ((await step('reserve', 'svc.reserve')) !== 200) return 'error';
      if ((await step('charge', 'svc.charge')) !== 200) return 'error';
      const shipped = await step('ship', 'svc.ship');
      if (shipped === 200) return 'finished';
      if (shipped !== 400) return 'error';
      if ((await step('charge-undo', 'svc.refund')) !== 200) return 'error';
      if ((await step('reserve-undo', 'svc.release')) !== 200) return 'error';
      return 'compensated';
    },
  },
});

const server = createServer(restate.createEndpointHandler({ services: [benchSaga] }));
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
process.stdout.write(`READY ${broker.url}\n`);

process.on('SIGTERM', () => {
  broker.close();
  server.close();
  process.exit(0);
});
// Orphaned (the benchmark that started it died): go too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500).unref();
