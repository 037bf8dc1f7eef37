// The benchmark participant: one process answering the three steps and their compensations at
// once. It connects with sagachart's participant SDK to a WebSocket endpoint that speaks the
// sagachart protocol (the sagachart broker, or the hand-rolled MiniBroker of the floor and peers).
// Usage: participant.ts <url> <token>
import { connectParticipant, SagaBusinessError, type JsonValue } from '../../src/index.js';

const [url, token] = process.argv.slice(2);
if (!url || !token) throw new Error('usage: participant.ts <url> <token>');

const ok = (content: JsonValue) => ({ ok: true, orderId: (content as { orderId?: string }).orderId ?? null });
const participant = await connectParticipant({
  url,
  token,
  service: 'svc',
  reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
  dedupCapacity: 1_000,
  handlers: {
    'svc.reserve': ok,
    'svc.charge': ok,
    'svc.ship': (content) => {
      if ((content as { fail?: boolean }).fail) throw new SagaBusinessError('declined');
      return ok(content);
    },
    'svc.release': ok,
    'svc.refund': ok,
  },
});
process.stdout.write('READY\n');
process.on('SIGTERM', () => void participant.close().then(() => process.exit(0)));
// Orphaned (the benchmark that started it died): go too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500).unref();
