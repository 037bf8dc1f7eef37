import { SagaBusinessError, type ParticipantHandlers, type ParticipantRequestInfo } from '../../src/index.js';

/** One line of a participant's ledger: what it applied or undid, for which order. */
export interface LedgerEntry {
  service: string;
  action: string;
  orderId: string | null;
  requestId: string;
}

type Content = Record<string, unknown>;
const str = (v: unknown) => (typeof v === 'string' ? v : null);

/**
 * The three services of the demo. Each keeps a ledger of what it did; the business rules:
 * inventory refuses SKUs named `sold-out`, payment declines amounts over 1,000, and the express
 * courier never answers for orders whose id ends in `-slow` (the saga's timeout fires).
 */
export function createServices(record: (entry: LedgerEntry) => void): Record<string, ParticipantHandlers> {
  let seq = 0;
  const log = (service: string, action: string, info: ParticipantRequestInfo, orderId: unknown) =>
    record({ service, action, orderId: str(orderId), requestId: info.requestId });
  return {
    inventory: {
      'inventory.reserve': (content, info) => {
        const c = content as Content;
        const items = (c.items ?? []) as Array<{ sku: string }>;
        if (items.some((i) => i.sku === 'sold-out')) throw new SagaBusinessError('out of stock', { reason: 'out of stock' });
        log('inventory', 'reserve', info, c.orderId);
        return { reservationId: `res-${++seq}` };
      },
      'inventory.release': (content, info) => {
        log('inventory', 'release', info, null);
        return { released: str((content as Content).reservationId) };
      },
    },
    payment: {
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
    shipping: {
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
  };
}
