import { randomUUID } from 'node:crypto';
import { SagaVersionConflictError } from '../errors/saga-version-conflict-error.js';
import { FINAL_STATUSES } from '../status.js';
import type { RedisKeyLayout } from './redis-key-layout.js';
import type { SagaRecord } from './saga-repository.js';

/** The one call the group commit makes: store-n.lua with its keys and arguments. */
export type StoreManyCall = (keys: readonly string[], argv: ReadonlyArray<string | number>) => Promise<unknown>;

/** Limits of one call of store-n.lua. */
export interface GroupCommitLimits {
  /** Records per call at most. */
  maxRecords: number;
  /** Bytes of record bodies per call at most (a single larger record still goes, alone). */
  maxBytes: number;
  /** Redis Cluster: a call carries one shard only, since a script may touch one slot. */
  perShard: boolean;
}

interface PendingStore {
  uuid: string;
  shard: number;
  sagaName: string;
  expected: number | null;
  /** The record's 12 arguments of store-n.lua. */
  argv: Array<string | number>;
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

const FINALS = [...FINAL_STATUSES].join(' ');

/**
 * Group commit of Redis stores: every `store()` made in one tick is queued, and a microtask later
 * the queue goes out as few calls of store-n.lua as the limits allow (one per shard on a
 * Cluster). Each record still gets its own compare-and-set, and its caller its own outcome: a
 * conflict rejects that caller only. One script call per batch costs Redis and Node less than
 * one per store, and less than a pipeline of them.
 *
 * @example
 * ```ts
 * const commit = new RedisGroupCommit(layout, (keys, argv) => redis.sagaStoreMany(keys.length, ...keys, ...argv), { maxRecords: 32, maxBytes: 1 << 20, perShard: false });
 * await Promise.all([commit.store(a, null, ''), commit.store(b, 3, '')]); // one EVALSHA
 * ```
 */
export class RedisGroupCommit {
  readonly #layout: RedisKeyLayout;
  readonly #call: StoreManyCall;
  readonly #limits: GroupCommitLimits;
  #queue: PendingStore[] = [];
  #scheduled = false;

  constructor(layout: RedisKeyLayout, call: StoreManyCall, limits: GroupCommitLimits) {
    this.#layout = layout;
    this.#call = call;
    this.#limits = limits;
  }

  #calls = 0;

  /** Number of script calls sent so far (for tests and benchmarks). */
  get calls(): number {
    return this.#calls;
  }

  /**
   * Queues a store; resolves once Redis applied it, rejects with `SagaVersionConflictError` when
   * the stored version is not `expected`. The record is serialised now, so the caller may change
   * it afterwards.
   */
  store(record: SagaRecord, expected: number | null, expireAt: number | ''): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const body = JSON.stringify(record);
      const shard = this.#layout.shardOf(record.uuid);
      this.#queue.push({
        uuid: record.uuid,
        shard,
        sagaName: record.sagaName,
        expected,
        argv: [
          this.#layout.prefixOf(shard),
          record.uuid,
          expected ?? '',
          record.version,
          record.status,
          record.sagaName,
          record.definitionHash,
          record.createdAt,
          record.updatedAt,
          record.timer?.at ?? '',
          body,
          expireAt,
        ],
        bytes: body.length,
        resolve,
        reject,
      });
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(this.#flush);
      }
    });
  }

  /**
   * Sends what is queued now rather than a microtask later: before a QUIT, so that the stores of
   * this tick reach Redis ahead of it on the same connection (their replies then arrive first).
   */
  flush(): void {
    this.#flush();
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    const queue = this.#queue;
    if (!queue.length) return;
    this.#queue = [];
    if (!this.#limits.perShard) {
      this.#sendInBatches(queue);
      return;
    }
    const byShard = new Map<number, PendingStore[]>();
    for (const store of queue) {
      const list = byShard.get(store.shard);
      if (list) list.push(store);
      else byShard.set(store.shard, [store]);
    }
    for (const list of byShard.values()) this.#sendInBatches(list);
  };

  /** Cuts `stores` (in call order) into batches within the limits and sends each. */
  #sendInBatches(stores: readonly PendingStore[]): void {
    let start = 0;
    while (start < stores.length) {
      let end = start + 1;
      let bytes = stores[start]!.bytes;
      while (end < stores.length && end - start < this.#limits.maxRecords && bytes + stores[end]!.bytes <= this.#limits.maxBytes) {
        bytes += stores[end]!.bytes;
        end++;
      }
      this.#send(stores.slice(start, end));
      start = end;
    }
  }

  #send(batch: readonly PendingStore[]): void {
    const keys: string[] = [];
    for (const store of batch) keys.push(`${store.argv[0]}x:${store.uuid}`);
    // Redis Cluster needs every key a script touches declared (it routes and checks by them); a
    // single Redis does not, and declaring 8 index keys per shard makes a call ~40% longer.
    if (this.#limits.perShard) {
      const sagasByShard = new Map<number, Set<string>>();
      for (const store of batch) {
        const names = sagasByShard.get(store.shard);
        if (names) names.add(store.sagaName);
        else sagasByShard.set(store.shard, new Set([store.sagaName]));
      }
      for (const [shard, names] of sagasByShard) keys.push(...this.#layout.indexKeys(shard, names));
    }
    // Identifies this call: if ioredis re-sends it after a reconnect, each record finds its own write.
    const argv: Array<string | number> = [batch.length, randomUUID(), FINALS];
    for (const store of batch) for (const arg of store.argv) argv.push(arg);
    this.#calls++;
    this.#call(keys, argv).then(
      (reply) => settle(batch, reply),
      (err: unknown) => {
        for (const store of batch) store.reject(err);
      },
    );
  }
}

/** Maps the return codes of store-n.lua to each caller's outcome. */
function settle(batch: readonly PendingStore[], reply: unknown): void {
  if (!Array.isArray(reply) || reply.length !== batch.length) {
    const err = new Error(`store-n.lua returned ${JSON.stringify(reply)} for ${batch.length} records; expected one integer per record.`);
    for (const store of batch) store.reject(err);
    return;
  }
  batch.forEach((store, i) => {
    const code: unknown = reply[i];
    if (code === 0) store.resolve();
    else if (code === -1) store.reject(new SagaVersionConflictError(store.uuid, store.expected ?? 0, null));
    else if (typeof code === 'number' && Number.isSafeInteger(code) && code > 0) store.reject(new SagaVersionConflictError(store.uuid, store.expected ?? 0, code));
    else store.reject(new Error(`store-n.lua returned an unknown code ${JSON.stringify(code)} for execution '${store.uuid}'.`));
  });
}
