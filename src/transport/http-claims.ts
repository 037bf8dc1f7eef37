import type { ServerResponse } from 'node:http';

/**
 * Responses a request listener has taken on (the admin API's): the broker's own answer to plain
 * HTTP requests leaves them alone. Listeners on one server run in order, so the one that takes a
 * request marks it here before the broker's listener runs.
 */
export const claimedResponses = new WeakSet<ServerResponse>();
