// The participants of the cluster benchmark (bench/cluster.ts), in one process: one connection
// per service, each to the instance given for it, answering at once (shipping declines the sagas
// chosen to fail, which then compensate charge and reserve).
// Usage: cluster-participants.ts <inventory url> <payment url> <shipping url>
import { connectParticipant, SagaBusinessError, type JsonValue, type Participant } from '../../src/index.js';
import { CLUSTER_AUTH, CLUSTER_SERVICES } from './cluster-saga.js';

const urls = process.argv.slice(2);
if (urls.length !== CLUSTER_SERVICES.length) throw new Error('usage: cluster-participants.ts <inventory url> <payment url> <shipping url>');

const ok = (content: JsonValue) => ({ ok: true, orderId: (content as { orderId?: string }).orderId ?? null });
const handlers = {
  inventory: { 'inventory.reserve': ok, 'inventory.release': ok },
  payment: { 'payment.charge': ok, 'payment.refund': ok },
  shipping: {
    'shipping.ship': (content: JsonValue) => {
      if ((content as { fail?: boolean }).fail) throw new SagaBusinessError('declined');
      return ok(content);
    },
  },
};
const participants: Participant[] = await Promise.all(
  CLUSTER_SERVICES.map((service, s) =>
    connectParticipant({ url: urls[s]!, token: CLUSTER_AUTH[service]!, service, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, dedupCapacity: 1_000, handlers: handlers[service] }),
  ),
);
process.stdout.write('READY\n');
process.on('SIGTERM', () => void Promise.all(participants.map((p) => p.close())).then(() => process.exit(0)));
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 500).unref();
