import { z } from 'zod';
import {
  AckFrame,
  CloseCode,
  CommitFrame,
  ErrorFrame,
  FrameError,
  HelloFrame,
  MAX_ISSUES,
  PREVIEW_CHARS,
  PROTOCOL_VERSION,
  RejectFrame,
  RequestFrame,
  ReserveFrame,
  ResponseFrame,
  SERVICE_HEADER,
  VoteFrame,
  WelcomeFrame,
} from './protocol.js';

/**
 * The defaults of `WebSocketBroker.listen` that a participant sees on the wire. The broker's
 * options schema is their home; `test/unit/asyncapi.test.ts` reads them from it, so the two agree.
 */
export const BROKER_WIRE_DEFAULTS = {
  heartbeatMs: 10_000,
  helloTimeoutMs: 5_000,
  maxPayloadBytes: 1024 * 1024,
  maxInvalidFrames: 100,
  invalidFrameWindowMs: 10_000,
} as const;

/** Deepest `content` of a response the orchestrator takes (`MAX_RESPONSE_DEPTH`); deeper fails the attempt with `SAGA_RESPONSE_INVALID`. */
const MAX_CONTENT_DEPTH = 64;

/** One frame of the protocol: its zod schema, who sends it, and what a participant author needs to know about it. */
interface FrameDoc {
  schema: z.ZodObject;
  /** From the participant's side: it sends (`send`) or receives (`receive`) the frame. */
  action: 'send' | 'receive';
  title: string;
  summary: string;
  description: string;
  /** Descriptions of top-level fields; each must name a field of the schema. */
  fields: Record<string, string>;
  /** The frame a participant answers this one with. */
  reply?: string;
  correlated?: boolean;
  examples: Array<{ name: string; summary: string; payload: Record<string, unknown> }>;
}

const d = BROKER_WIRE_DEFAULTS;

const REQUEST_ID = `The id of the request, \`uuid/phase/attempt/step\`: the execution's uuid, the phase (\`execute\`, \`compensate\`, \`reserve\`, \`commit\` or \`reject\`), the attempt (a whole number from 1) and the step's path (last, as it may hold slashes: \`shipping/express/book-courier\`; \`$tx/<service>\` for the two-phase commit). The same id for every re-send of one attempt, a new one for each retry. Answer with it unchanged.`;

const frames: Record<string, FrameDoc> = {
  hello: {
    schema: HelloFrame,
    action: 'send',
    title: 'hello',
    summary: 'The first frame of a connection: the protocol version, the service, the targets it handles.',
    description: [
      `Send it at once after the WebSocket opens; until it is accepted any other frame is refused (\`${FrameError.HelloRequired}\`).`,
      `The connection has \`helloTimeoutMs\` (default ${d.helloTimeoutMs} ms) from the WebSocket’s opening to send it: past that the orchestrator sends an \`error\` frame \`{ "type": "error", "code": "${FrameError.HelloTimeout}", "message": "no hello within ${d.helloTimeoutMs} ms" }\` and closes with ${CloseCode.PolicyViolation}.`,
      `Refused for good, with an \`error\` frame and a close: a protocol other than ${PROTOCOL_VERSION} (\`${FrameError.ProtocolVersion}\`, ${CloseCode.ProtocolError}); a \`service\` other than the one in the \`${SERVICE_HEADER}\` header (\`${FrameError.WrongService}\`, ${CloseCode.PolicyViolation}); a target outside the service (\`${FrameError.ForeignTarget}\`, ${CloseCode.PolicyViolation}). A second \`hello\` on one connection is refused (\`${FrameError.HelloRepeated}\`) and the connection carries on.`,
    ].join('\n\n'),
    fields: {
      protocol: `The protocol version, ${PROTOCOL_VERSION}.`,
      service: 'The service this connection serves: the one its token is for (1–200 characters).',
      targets: 'What it handles, 1 to 1,000 names of 1–200 characters: `service.action` targets (`inventory.reserve`), or the service name itself (`inventory`) for every target of the service; a service-wide participant receives `request` frames whose `target` is the full `service.action`, so dispatch on `target`.',
      instance: 'A free-form id of this process, for the orchestrator’s logs (up to 200 characters).',
    },
    examples: [{ name: 'inventory', summary: 'An inventory service handling two targets', payload: { type: 'hello', protocol: PROTOCOL_VERSION, service: 'inventory', targets: ['inventory.reserve', 'inventory.release'], instance: 'inventory-7f9c' } }],
  },
  welcome: {
    schema: WelcomeFrame,
    action: 'receive',
    title: 'welcome',
    summary: 'The answer to hello: the participant is connected; requests may come from now on.',
    description: 'Requests held while no participant of the service was connected are sent right after it.',
    fields: {
      protocol: `The protocol version the orchestrator speaks, ${PROTOCOL_VERSION}.`,
      service: 'The service the connection was accepted for.',
      heartbeatMs: `How often the orchestrator sends a WebSocket ping (default ${d.heartbeatMs}). Answer each with a pong (most WebSocket libraries do it by themselves): a connection that has not answered a ping by the next one is cut. Take the orchestrator for gone when no ping came for a few intervals (the TypeScript SDK waits 2.5) and reconnect.`,
      maxPayloadBytes: `The largest frame the orchestrator takes (default ${d.maxPayloadBytes} bytes, 1 MiB); a bigger one closes the connection with ${CloseCode.MessageTooBig}.`,
    },
    examples: [{ name: 'defaults', summary: 'With the broker’s defaults', payload: { type: 'welcome', protocol: PROTOCOL_VERSION, service: 'inventory', heartbeatMs: d.heartbeatMs, maxPayloadBytes: d.maxPayloadBytes } }],
  },
  request: {
    schema: RequestFrame,
    action: 'receive',
    title: 'request',
    summary: 'Act on a step of a saga (phase `execute`) or undo it (phase `compensate`); answered with `response`.',
    description: [
      'Delivery is at least once: the same request (the same `requestId`) can come again, after a reconnect or a restart of the orchestrator. Answer a repeat as the first time without acting twice, across your own restarts too: make the handler idempotent on `requestId`.',
      'Requests for one service go round-robin over its connections that declared the target (or the whole service). One that went out on a connection that closed unanswered is sent again, on another connection or after the reconnect.',
    ].join('\n\n'),
    fields: {
      requestId: REQUEST_ID,
      uuid: 'The saga execution. It is also the id of the transaction the two-phase commit will reserve, commit or reject (`transactionId`): make your changes under it.',
      sagaName: 'The saga’s name.',
      step: 'The step’s path in the saga (`reserve-stock`, `shipping/express/book-courier`).',
      phase: '`execute`: do the step. `compensate`: undo what the `execute` of this step did. A compensation can come for an `execute` you never carried out (an operator aborted the execution while the step waited): undo what is there.',
      attempt: 'The attempt, from 1; a retry after a 500 or a timeout is a new attempt with a new `requestId`.',
      target: 'What to do, `service.action` (1–200 characters), also when this participant declared the whole service.',
      content: 'The request’s body, any JSON value (`null` when the step sent none).',
      deadline: 'When the orchestrator stops waiting (ms since the epoch), or `null` for no limit. Past it the attempt counts as failed like a 500: retried as a new attempt per the step’s retry policy, or the step fails; an answer after it is ignored, and the timed-out attempt is taken as not done (the step is not compensated for it). Honour it: do not start, or undo, work whose deadline has passed, and answer before it. The TypeScript SDK passes it on and does not check it.',
      user: 'Who started the execution, when the orchestrator was told (up to 200 characters).',
    },
    reply: 'response',
    correlated: true,
    examples: [
      {
        name: 'execute',
        summary: 'The first attempt of a step with a 5 s timeout',
        payload: {
          type: 'request',
          requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/execute/1/reserve-stock',
          uuid: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d',
          sagaName: 'create-order',
          step: 'reserve-stock',
          phase: 'execute',
          attempt: 1,
          target: 'inventory.reserve',
          content: { items: ['book'] },
          deadline: 1767225605000,
        },
      },
    ],
  },
  response: {
    schema: ResponseFrame,
    action: 'send',
    title: 'response',
    summary: 'The answer to a request: 200 done, 400 refused (a business reason), 500 failed (retried).',
    description: [
      '**200**: done; `content` goes to the step’s `onSuccess`.',
      '**400**: refused for a business reason (out of stock). Not retried: `content` goes to the step’s `onError` (`res.content()`), which may accept it (the saga goes on) or fail the step (the saga rolls back; with no `onError`, the step fails with `SAGA_PARTICIPANT_REJECTED`). The TypeScript SDK sends the `content` of the `SagaBusinessError` thrown, by default `{ "message": "<its message>" }`.',
      '**500**: failed; retried per the step’s retry policy as a new attempt (a new `requestId`), then the step fails (`SAGA_PARTICIPANT_SYSTEM_ERROR`, its message showing the start of `content`). The TypeScript SDK answers `{ "code": "SAGA_PARTICIPANT_FAILED", "message": … }` when a handler throws anything but a `SagaBusinessError`, `{ "code": "SAGA_NO_HANDLER", "message": … }` for a target it has no handler for, `{ "code": "SAGA_RESPONSE_TOO_BIG", "message": … }` when the answer would be over `maxPayloadBytes`, and `{ "code": "SAGA_RESPONSE_CONTENT_INVALID", "message": … }` in place of an answer that cannot be sent (not JSON, or nested too deep; a 400 stays a 400 with this content).',
      'Deduplication in the TypeScript SDK: it remembers, within its process, the last 10,000 answers by `requestId` (`dedupCapacity`), and answers a repeat from memory; a repeat that comes while the first still runs gets the same answer. It does **not** remember a 500 of a handler that threw (or returned a 500, or had no handler): a repeat of that `requestId` runs the handler again.',
      `An answer to no request in flight (already answered, or sent again elsewhere) gets an \`error\` frame \`${FrameError.ResponseUnexpected}\` and is otherwise ignored; one to a request sent to another service, \`${FrameError.ResponseWrongService}\`; a \`response\` to a \`reserve\`, \`commit\` or \`reject\`, \`${FrameError.AnswerMismatch}\`.`,
    ].join('\n\n'),
    fields: {
      requestId: 'The `requestId` of the request answered, unchanged (1–2,000 characters).',
      status: '200, 400 or 500.',
      content: `The answer’s body: any JSON value, nested at most ${MAX_CONTENT_DEPTH} levels (deeper fails the attempt with \`SAGA_RESPONSE_INVALID\`). Optional: absent means \`null\`.`,
      relatedServices: 'Other services (up to 100 names of 1–200 characters) that took part in this step on your behalf: they are asked to reserve, commit or reject the transaction too.',
    },
    correlated: true,
    examples: [
      { name: 'done', summary: 'Done', payload: { type: 'response', requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/execute/1/reserve-stock', status: 200, content: { id: 'res-42' } } },
      { name: 'refused', summary: 'Refused: the step’s onError reads the content', payload: { type: 'response', requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/execute/1/reserve-stock', status: 400, content: { message: 'out of stock' } } },
      { name: 'failed', summary: 'Failed: retried as a new attempt', payload: { type: 'response', requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/execute/1/reserve-stock', status: 500, content: { code: 'SAGA_PARTICIPANT_FAILED', message: 'database unavailable' } } },
    ],
  },
  reserve: {
    schema: ReserveFrame,
    action: 'receive',
    title: 'reserve',
    summary: 'The two-phase commit, phase 1: can the changes made under the transaction be made final? Answered with `vote`.',
    description: 'Sent to one connection of every service that took part (the target service of every executed step, and every `relatedServices`), once the steps are done. A `yes` is a promise: the service must be able to commit later, whatever happens meanwhile. A vote after `deadline` counts as a no. A service that holds nothing under transactions votes `yes` at once (the TypeScript SDK does so for a service without hooks).',
    fields: {
      requestId: REQUEST_ID,
      transactionId: 'The transaction: the execution’s uuid, the `uuid` of every request of the execution.',
      sagaName: 'The saga’s name.',
      attempt: 'The attempt, from 1.',
      deadline: 'When the orchestrator stops waiting for the vote (ms since the epoch; the saga’s `commitTimeoutMs`, 30 s by default); a later vote counts as a no.',
    },
    reply: 'vote',
    correlated: true,
    examples: [{ name: 'reserve', summary: 'A reserve', payload: { type: 'reserve', requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/reserve/1/$tx/inventory', transactionId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d', sagaName: 'create-order', attempt: 1, deadline: 1767225630000 } }],
  },
  vote: {
    schema: VoteFrame,
    action: 'send',
    title: 'vote',
    summary: 'The answer to `reserve`: `yes`, or `no` with a reason.',
    description: `A \`no\` rolls the whole execution back: its steps are compensated, then every service is told to \`reject\`. Answer a repeated \`reserve\` of a transaction as the first time (the TypeScript SDK remembers votes by transaction). A \`vote\` to anything but a \`reserve\` is refused (\`${FrameError.AnswerMismatch}\`).`,
    fields: {
      requestId: 'The `requestId` of the `reserve` answered (1–2,000 characters).',
      vote: '`yes` or `no`.',
      reason: 'Why it voted no, any JSON value; absent means `null`.',
      failed: 'A `no` because the check failed (it threw), not a refusal. Default `false`.',
    },
    correlated: true,
    examples: [
      { name: 'yes', summary: 'Yes', payload: { type: 'vote', requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/reserve/1/$tx/inventory', vote: 'yes' } },
      { name: 'no', summary: 'No, with why', payload: { type: 'vote', requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/reserve/1/$tx/inventory', vote: 'no', reason: { message: 'stock under audit' } } },
    ],
  },
  commit: {
    schema: CommitFrame,
    action: 'receive',
    title: 'commit',
    summary: 'The two-phase commit, phase 2: every service voted yes; make the transaction’s changes final. Answered with `ack`.',
    description: 'Sent again (after a backoff, or at once when unanswered by `deadline`, as a new attempt with a new `requestId`) until acknowledged, across restarts of the orchestrator: commit once per transaction, and acknowledge every repeat.',
    fields: {
      requestId: REQUEST_ID,
      transactionId: 'The transaction: the execution’s uuid.',
      sagaName: 'The saga’s name.',
      attempt: 'The attempt, from 1.',
      deadline: 'When the orchestrator stops waiting for this `ack` and sends the commit again (ms since the epoch).',
    },
    reply: 'ack',
    correlated: true,
    examples: [{ name: 'commit', summary: 'A commit', payload: { type: 'commit', requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/commit/1/$tx/inventory', transactionId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d', sagaName: 'create-order', attempt: 1, deadline: 1767225630000 } }],
  },
  reject: {
    schema: RejectFrame,
    action: 'receive',
    title: 'reject',
    summary: 'The execution was rolled back: drop the transaction’s changes. Answered with `ack`.',
    description: 'Ends every rollback, after the compensations (a compensation and a reject may both reach a service for one transaction, the compensation first: undo what is still there). Sent again until acknowledged, as `commit` is.',
    fields: {
      requestId: REQUEST_ID,
      transactionId: 'The transaction: the execution’s uuid.',
      sagaName: 'The saga’s name.',
      attempt: 'The attempt, from 1.',
      deadline: 'When the orchestrator stops waiting for this `ack` and sends the reject again (ms since the epoch).',
    },
    reply: 'ack',
    correlated: true,
    examples: [{ name: 'reject', summary: 'A reject', payload: { type: 'reject', requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/reject/1/$tx/inventory', transactionId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d', sagaName: 'create-order', attempt: 1, deadline: 1767225660000 } }],
  },
  ack: {
    schema: AckFrame,
    action: 'send',
    title: 'ack',
    summary: 'The answer to `commit` or `reject`: carried out, or (`ok: false`) failed, send it again.',
    description: `An \`ack\` to anything but a \`commit\` or \`reject\` is refused (\`${FrameError.AnswerMismatch}\`).`,
    fields: {
      requestId: 'The `requestId` of the `commit` or `reject` answered (1–2,000 characters).',
      ok: '`false`: it failed; the orchestrator sends it again after a backoff. Default `true`.',
      reason: 'Why it failed, any JSON value; absent means `null`.',
    },
    correlated: true,
    examples: [{ name: 'ok', summary: 'Carried out', payload: { type: 'ack', requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/commit/1/$tx/inventory' } }],
  },
  error: {
    schema: ErrorFrame,
    action: 'receive',
    title: 'error',
    summary: 'A frame was refused. The connection stays open, unless a close follows.',
    description: [
      `Codes: ${Object.values(FrameError)
        .map((code) => `\`${code}\``)
        .join(', ')}.`,
      `Followed by a close: \`${FrameError.ProtocolVersion}\` (${CloseCode.ProtocolError}); \`${FrameError.WrongService}\`, \`${FrameError.ForeignTarget}\`, \`${FrameError.HelloTimeout}\`, \`${FrameError.TooManyInvalidFrames}\` (${CloseCode.PolicyViolation}); \`${FrameError.SendBufferFull}\` (${CloseCode.TryAgainLater}). More than \`maxInvalidFrames\` (${d.maxInvalidFrames}) invalid frames within \`invalidFrameWindowMs\` (${d.invalidFrameWindowMs} ms) close the connection with ${CloseCode.PolicyViolation}; an answer to no request in flight (\`${FrameError.ResponseUnexpected}\`) does not count.`,
    ].join('\n\n'),
    fields: {
      code: 'One of the codes above.',
      message: 'What was wrong, for people.',
      issues: `The fields that do not match the protocol (\`${FrameError.Invalid}\`): each \`path\` (dotted) and \`message\`, at most ${MAX_ISSUES}, each cut to ${PREVIEW_CHARS} characters.`,
      requestId: `The refused frame’s \`requestId\`, cut to ${PREVIEW_CHARS} characters (then ending in \`…\`).`,
    },
    examples: [
      {
        name: 'invalid',
        summary: 'A response with a wrong status',
        payload: { type: 'error', code: FrameError.Invalid, message: 'the frame does not match the protocol: status: Invalid input', issues: [{ path: 'status', message: 'Invalid input' }], requestId: '0190c3f2-6f6e-7a0b-9c1d-2e3f4a5b6c7d/execute/1/reserve-stock' },
      },
      { name: 'hello-timeout', summary: 'No hello in time (a close with 1008 follows)', payload: { type: 'error', code: FrameError.HelloTimeout, message: `no hello within ${d.helloTimeoutMs} ms` } },
    ],
  },
};

const OVERVIEW = [
  `The protocol between a sagachart orchestrator (\`WebSocketBroker\`) and its participant services, version ${PROTOCOL_VERSION}: JSON text frames over one WebSocket per connection, each an object with a \`type\`. Generated from the zod schemas that both ends validate every frame with (\`src/transport/protocol.ts\`). This document describes a participant: \`send\` is what it sends, \`receive\` what it receives.`,
  `**Connecting.** Open the WebSocket with the headers \`${SERVICE_HEADER}: <service>\` and \`Authorization: Bearer <token>\`. The token is checked at the upgrade: HTTP 401 for a missing or wrong one (final: do not retry with it), 503 when too many connections are joining or the orchestrator is shutting down (retry). The token check has \`helloTimeoutMs\` (${d.helloTimeoutMs} ms by default; past it, HTTP 503); once the WebSocket is open, send \`hello\` within \`helloTimeoutMs\` again, and wait for \`welcome\`.`,
  `**Heartbeats** are WebSocket pings, not frames: the orchestrator pings every \`heartbeatMs\` (${d.heartbeatMs} ms by default; \`welcome\` says it), and the participant must answer each with a pong (most WebSocket libraries do it by themselves; the frames you send do not count). At each ping, a connection that has not answered the previous one is cut without a close frame (you see 1006): a silent connection is cut between one and two \`heartbeatMs\` after its last pong.`,
  `**Closes.** ${CloseCode.ProtocolError} (unsupported protocol version) and ${CloseCode.PolicyViolation} (wrong service, a foreign target, no hello in time, too many invalid frames) are final: reconnecting the same way will be refused again, so stop and fix the participant (the TypeScript SDK stops and rejects with \`SagaParticipantRefusedError\`). Every other close means reconnect, with exponential backoff and jitter (the SDK: 100 ms doubling to 5 s, times 0.5–1): ${CloseCode.GoingAway} (the orchestrator shuts down), ${CloseCode.MessageTooBig} (a frame over \`maxPayloadBytes\`), ${CloseCode.TryAgainLater} (you did not read: your send buffer at the orchestrator passed its limit), 1006 (cut after a missed heartbeat, or the network). Requests unanswered on a closed connection are sent again after the reconnect.`,
  `**Ids.** \`uuid\` is the saga execution, and the \`transactionId\` of its two-phase commit. \`requestId\` is \`uuid/phase/attempt/step\`: stable across re-sends of one attempt, new for each retry; answer with it unchanged and deduplicate on it (delivery is at least once).`,
  `**Field types and limits.** Integers are JSON numbers without a fraction; times are ms since the epoch. Service and target names: 1–200 characters; \`hello.targets\`: 1–1,000; \`response.relatedServices\`: up to 100; \`requestId\` in an answer: 1–2,000 characters; \`instance\` and \`user\`: up to 200. \`content\` and \`reason\`: any JSON, nested at most ${MAX_CONTENT_DEPTH} levels in a response. A frame: at most \`maxPayloadBytes\` (${d.maxPayloadBytes} bytes by default). The orchestrator ignores fields it does not know; ignore those you do not know too.`,
].join('\n\n');

/**
 * The JSON Schema (draft-07, the AsyncAPI schema format's base) of a frame's zod schema, as
 * `z.toJSONSchema` gives it for what a parser accepts (`io: 'input'`: unknown fields allowed).
 *
 * @example
 * ```ts
 * frameJsonSchema(HelloFrame).required; // ['type', 'protocol', 'service', 'targets']
 * ```
 */
export function frameJsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _dialect, ...jsonSchema } = z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }) as Record<string, unknown>;
  return jsonSchema;
}

function payloadOf(name: string, frame: FrameDoc): Record<string, unknown> {
  const schema = frameJsonSchema(frame.schema);
  const properties = { ...(schema.properties as Record<string, Record<string, unknown>>) };
  for (const [field, description] of Object.entries(frame.fields)) {
    if (!properties[field]) throw new Error(`asyncApiDocument: the description of ${name}.${field} names no field of the ${name} frame; fix it in src/transport/asyncapi.ts.`);
    properties[field] = { ...properties[field], description };
  }
  return { ...schema, properties };
}

const channelRef = { $ref: '#/channels/participant' };
const channelMessage = (name: string) => ({ $ref: `#/channels/participant/messages/${name}` });

/**
 * The participant WebSocket protocol as an AsyncAPI 3.0 document: one channel (the WebSocket),
 * a message per frame type whose payload is the JSON Schema of its zod schema in
 * `src/transport/protocol.ts`, and an operation per frame from the participant's side, with what
 * a participant written in another language needs (heartbeats, closes, limits, answers) in the
 * descriptions. Pure: the same document every call, a new object each time. The package ships it
 * as `asyncapi.json` (`npm run asyncapi` writes it).
 *
 * @example
 * ```ts
 * import { asyncApiDocument } from 'sagachart';
 * writeFileSync('asyncapi.json', JSON.stringify(asyncApiDocument(), null, 2));
 * ```
 */
export function asyncApiDocument(): Record<string, unknown> {
  const messages: Record<string, unknown> = {};
  const channelMessages: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  for (const [name, frame] of Object.entries(frames)) {
    messages[name] = {
      name,
      title: frame.title,
      summary: frame.summary,
      description: frame.description,
      contentType: 'application/json',
      payload: payloadOf(name, frame),
      ...(frame.correlated ? { correlationId: { $ref: '#/components/correlationIds/requestId' } } : {}),
      examples: frame.examples.map((e) => ({ name: e.name, summary: e.summary, payload: e.payload })),
    };
    channelMessages[name] = { $ref: `#/components/messages/${name}` };
    const operationId = `${frame.action}${name[0]!.toUpperCase()}${name.slice(1)}`;
    operations[operationId] = {
      action: frame.action,
      channel: channelRef,
      title: `${frame.action === 'send' ? 'Send' : 'Receive'} ${name}`,
      summary: frame.summary,
      messages: [channelMessage(name)],
      ...(frame.reply ? { reply: { channel: channelRef, messages: [channelMessage(frame.reply)] } } : {}),
    };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'sagachart participant protocol',
      version: String(PROTOCOL_VERSION),
      description: OVERVIEW,
      license: { name: 'MIT' },
    },
    defaultContentType: 'application/json',
    servers: {
      orchestrator: {
        host: '{host}',
        protocol: 'ws',
        description: 'The orchestrator’s `WebSocketBroker` (`broker.url`).',
        variables: { host: { default: 'localhost:7400', description: 'Host and port the broker listens on.' } },
        security: [{ $ref: '#/components/securitySchemes/serviceToken' }],
      },
      orchestratorTls: {
        host: '{host}',
        protocol: 'wss',
        description: 'The same over TLS (`WebSocketBroker.listen({ tls })`, or a server you attach it to).',
        variables: { host: { default: 'localhost:7400', description: 'Host and port the broker listens on.' } },
        security: [{ $ref: '#/components/securitySchemes/serviceToken' }],
      },
    },
    channels: {
      participant: {
        address: null,
        title: 'Participant connection',
        description: 'One WebSocket per participant connection, at the path the orchestrator serves (any path unless it was given `path`; another path gets HTTP 404 then). Frames in both directions on it.',
        messages: channelMessages,
        bindings: {
          ws: {
            method: 'GET',
            headers: {
              type: 'object',
              properties: {
                [SERVICE_HEADER]: { type: 'string', minLength: 1, description: 'The service this connection serves.' },
                authorization: { type: 'string', pattern: '^Bearer .+$', description: 'The service’s token, `Bearer <token>`.' },
              },
              required: [SERVICE_HEADER, 'authorization'],
            },
            bindingVersion: '0.1.0',
          },
        },
      },
    },
    operations,
    components: {
      messages,
      correlationIds: {
        requestId: { description: 'An answer carries the `requestId` of what it answers.', location: '$message.payload#/requestId' },
      },
      securitySchemes: {
        serviceToken: {
          type: 'http',
          scheme: 'bearer',
          description: `The token of the service named in the \`${SERVICE_HEADER}\` header, checked at the upgrade: HTTP 401 when missing or wrong.`,
        },
      },
    },
  };
}
