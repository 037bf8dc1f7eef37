import { SagaBusinessError, type ParticipantHandlers, type ParticipantRequestInfo, type TransactionHooks } from '../../src/index.js';

/** One line of a participant's ledger: what it applied or undid, for which order. */
export interface LedgerEntry {
  service: string;
  action: string;
  orderId: string | null;
  requestId: string;
}

/** A service of the demo: its request handlers, and the hooks of the two-phase commit if it has any. */
export interface DemoService extends TransactionHooks {
  handlers: ParticipantHandlers;
}

type Content = Record<string, unknown>;
type Items = Array<{ sku: string; qty: number }>;
const str = (v: unknown) => (typeof v === 'string' ? v : null);

/**
 * The inventory service, the worked example of a participant that holds its changes under the
 * transaction until the orchestrator decides. Every request of an execution carries the
 * transaction id (`info.uuid`, the execution's uuid):
 *
 * - `inventory.reserve` takes the stock from what can be sold and holds it under the transaction;
 * - `onReserve` votes on whether the held stock can be made final (no while a stock audit runs
 *   on one of its SKUs: the orchestrator then rolls the whole order back);
 * - `onCommit` makes it final (sold); `onReject` and the compensation `inventory.release` put it
 *   back. Each one looks at what is held under the transaction, so running one after another, or
 *   twice, does nothing more: that is what makes them safe to repeat.
 */
function inventory(log: (action: string, info: ParticipantRequestInfo, orderId: unknown) => void): DemoService {
  const available = new Map<string, number>();
  const held = new Map<string, { orderId: unknown; items: Items }>();
  const sold = new Map<string, Items>();
  const putBack = (items: Items) => {
    for (const { sku, qty } of items) available.set(sku, (available.get(sku) ?? 1_000) + qty);
  };
  let seq = 0;
  return {
    handlers: {
      'inventory.reserve': (content, info) => {
        const c = content as Content;
        const items = (c.items ?? []) as Items;
        if (items.some((i) => i.sku === 'sold-out' || (available.get(i.sku) ?? 1_000) < i.qty)) throw new SagaBusinessError('out of stock', { reason: 'out of stock' });
        for (const { sku, qty } of items) available.set(sku, (available.get(sku) ?? 1_000) - qty);
        held.set(info.uuid, { orderId: c.orderId, items });
        log('reserve', info, c.orderId);
        return { reservationId: `res-${++seq}` };
      },
      'inventory.release': (_content, info) => {
        const hold = held.get(info.uuid);
        if (hold) {
          held.delete(info.uuid);
          putBack(hold.items);
        }
        log('release', info, hold?.orderId ?? null);
        return { released: hold !== undefined };
      },
    },
    onReserve: (transactionId, info) => {
      const hold = held.get(transactionId);
      const audited = hold?.items.some((i) => i.sku === 'audit') ?? false;
      log(audited ? 'vote no' : 'vote yes', info, hold?.orderId ?? null);
      if (audited) throw new SagaBusinessError('a stock audit is running on this SKU', { reason: 'stock audit' });
      return true;
    },
    onCommit: (transactionId, info) => {
      const hold = held.get(transactionId);
      if (hold) {
        held.delete(transactionId);
        sold.set(transactionId, hold.items);
      }
      log('commit', info, hold?.orderId ?? null);
    },
    onReject: (transactionId, info) => {
      const hold = held.get(transactionId);
      if (hold) {
        held.delete(transactionId);
        putBack(hold.items);
      }
      log('reject', info, hold?.orderId ?? null);
    },
  };
}

/**
 * The three services of the demo. Each keeps a ledger of what it did; the business rules:
 * inventory refuses SKUs named `sold-out` and votes no on committing stock under audit (SKU
 * `audit`), payment declines amounts over 1,000, and the express courier never answers for
 * orders whose id ends in `-slow` (the saga's timeout fires). Payment and shipping make their
 * changes final at once: without hooks, they vote yes and acknowledge the commit by themselves.
 */
export function createServices(record: (entry: LedgerEntry) => void): Record<string, DemoService> {
  let seq = 0;
  const logFor = (service: string) => (action: string, info: ParticipantRequestInfo, orderId: unknown) =>
    record({ service, action, orderId: str(orderId), requestId: info.requestId });
  const log = (service: string, action: string, info: ParticipantRequestInfo, orderId: unknown) => logFor(service)(action, info, orderId);
  return {
    inventory: inventory(logFor('inventory')),
    payment: {
      handlers: {
        'payment.charge': (content, info) => {
          const c = content as Content;
          if (Number(c.amount) > 1_000) throw new SagaBusinessError('card declined', { reason: 'card declined' });
          log('payment', 'charge', info, c.orderId);
          return { chargeId: `ch-${++seq}` };
        },
        'payment.refund': (content, info) => {
          log('payment', 'refund', info, null);
          return { refunded: str((content as Content).chargeId) };
        },
      },
    },
    shipping: {
      handlers: {
        'shipping.express': (content, info) => {
          const c = content as Content;
          if (String(c.orderId).endsWith('-slow')) return new Promise(() => undefined); // the courier never answers
          log('shipping', 'express', info, c.orderId);
          return { trackingId: `EXP-${++seq}` };
        },
        'shipping.standard': (content, info) => {
          log('shipping', 'standard', info, (content as Content).orderId);
          return { trackingId: `STD-${++seq}` };
        },
        'shipping.cancel': (content, info) => {
          log('shipping', 'cancel', info, (content as Content).orderId);
          return {};
        },
      },
    },
  };
}
