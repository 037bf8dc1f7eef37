import { createServer } from 'node:net';

/** A TCP port free on 127.0.0.1 now (for a server a benchmark starts: Redis, Restate). */
export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}
