import type { Order } from './saga.js';

/**
 * A deterministic mix of orders: most go through, every fifth is declined at payment (its stock
 * reservation is released), every seventh ships express, one express order's courier never
 * answers, so its shipping step times out and the saga compensates the charge and the stock, and
 * order 11 holds stock under audit: every step succeeds, but inventory votes no at the commit, so
 * the order is rolled back and every service told to reject.
 */
export function demoOrders(count: number): Order[] {
  const orders: Order[] = [];
  for (let i = 1; i <= count; i++) {
    const declined = i % 5 === 0;
    const slow = i === 7;
    orders.push({
      orderId: `order-${String(i).padStart(3, '0')}${slow ? '-slow' : ''}`,
      customer: `customer-${i % 9}`,
      items: [{ sku: i === 11 ? 'audit' : `sku-${i % 4}`, qty: 1 + (i % 3) }],
      amount: declined ? 1_500 + (i % 500) : 20 + (i % 900),
      express: slow || i % 7 === 0,
    });
  }
  return orders;
}
