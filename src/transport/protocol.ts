import { z } from 'zod';

/**
 * The wire protocol between the orchestrator (`WebSocketBroker`) and participants
 * (`connectParticipant`): JSON text frames, one zod discriminated union on `type` per direction,
 * validated on both ends. The README documents it as a table, for participants in other languages.
 *
 * Frame types `reserve`, `commit`, `reject` (orchestrator → participant) and `vote`, `ack`
 * (participant → orchestrator) are reserved for the two-phase commit.
 */
export const PROTOCOL_VERSION = 1;

/** HTTP headers of the WebSocket upgrade that authenticate a participant. */
export const SERVICE_HEADER = 'x-sagachart-service';

const json: z.ZodType<unknown> = z.unknown();
const name = z.string().min(1).max(200);

/** Participant → orchestrator: the first frame, stating the protocol version and what it handles. */
export const HelloFrame = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  service: name,
  /** Targets handled: `inventory.reserve`, or `inventory` for every target of the service. */
  targets: z.array(name).min(1).max(1000),
  /** Free-form id of the instance, for logs. */
  instance: z.string().max(200).optional(),
});

/** Participant → orchestrator: the answer to a request. */
export const ResponseFrame = z.object({
  type: z.literal('response'),
  requestId: z.string().min(1).max(2000),
  status: z.union([z.literal(200), z.literal(400), z.literal(500)]),
  /** The answer's body; absent means `null`. */
  content: json.optional(),
  relatedServices: z.array(name).max(100).optional(),
});

/** Participant → orchestrator: the vote on a `reserve`: `yes`, the changes can be made final; `no`, with why. */
export const VoteFrame = z.object({
  type: z.literal('vote'),
  requestId: z.string().min(1).max(2000),
  vote: z.enum(['yes', 'no']),
  /** Why it voted no (what the hook threw or answered); absent means `null`. */
  reason: json.optional(),
  /** A no because the hook failed (it threw something other than a refusal), not a refusal. @defaultValue false */
  failed: z.boolean().optional(),
});

/** Participant → orchestrator: a `commit` or `reject` was carried out (`ok`), or failed and should be sent again. */
export const AckFrame = z.object({
  type: z.literal('ack'),
  requestId: z.string().min(1).max(2000),
  /** `false`: the hook failed; the orchestrator sends it again after a backoff. @defaultValue true */
  ok: z.boolean().optional(),
  reason: json.optional(),
});

export const ParticipantFrame = z.discriminatedUnion('type', [HelloFrame, ResponseFrame, VoteFrame, AckFrame]);
export type ParticipantFrame = z.infer<typeof ParticipantFrame>;
export type HelloFrame = z.infer<typeof HelloFrame>;
export type ResponseFrame = z.infer<typeof ResponseFrame>;
export type VoteFrame = z.infer<typeof VoteFrame>;
export type AckFrame = z.infer<typeof AckFrame>;

/** Orchestrator → participant: the answer to `hello`. */
export const WelcomeFrame = z.object({
  type: z.literal('welcome'),
  protocol: z.number().int(),
  service: name,
  heartbeatMs: z.number().int().positive(),
  maxPayloadBytes: z.number().int().positive(),
});

/** Orchestrator → participant: a request to act (or to compensate). */
export const RequestFrame = z.object({
  type: z.literal('request'),
  requestId: z.string().min(1),
  uuid: z.string().min(1),
  sagaName: z.string(),
  step: z.string(),
  phase: z.enum(['execute', 'compensate']),
  attempt: z.number().int().positive(),
  target: name,
  content: json,
  deadline: z.number().nullable(),
  /** Who started the execution, when the orchestrator was told. */
  user: z.string().max(200).optional(),
});

/** A message of the two-phase commit of transaction `transactionId` (the execution's uuid) to the service. */
const transactionFrame = <T extends 'reserve' | 'commit' | 'reject'>(type: T) =>
  z.object({
    type: z.literal(type),
    requestId: z.string().min(1),
    transactionId: z.string().min(1),
    sagaName: z.string(),
    attempt: z.number().int().positive(),
    /** When the orchestrator stops waiting for this answer (ms since the epoch). */
    deadline: z.number().nullable(),
  });

/** Orchestrator → participant: can the changes made under the transaction be made final? Answered with `vote`. */
export const ReserveFrame = transactionFrame('reserve');
/** Orchestrator → participant: make the transaction's changes final. Answered with `ack`. */
export const CommitFrame = transactionFrame('commit');
/** Orchestrator → participant: drop the transaction's changes. Answered with `ack`. */
export const RejectFrame = transactionFrame('reject');
export type TransactionFrame = z.infer<typeof ReserveFrame> | z.infer<typeof CommitFrame> | z.infer<typeof RejectFrame>;

/** Orchestrator → participant: a frame was refused; the connection stays open unless closed after. */
export const ErrorFrame = z.object({
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  /** The refused frame's `requestId`, cut to {@link PREVIEW_CHARS} characters (then ending in `…`). */
  requestId: z.string().optional(),
});

export const OrchestratorFrame = z.discriminatedUnion('type', [WelcomeFrame, RequestFrame, ReserveFrame, CommitFrame, RejectFrame, ErrorFrame]);
export type OrchestratorFrame = z.infer<typeof OrchestratorFrame>;
export type RequestFrame = z.infer<typeof RequestFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;

/**
 * The codes of error frames: one home, so that the broker, the participant and the README agree.
 * Each error frame carries one; those marked "closes" are followed by a close with the code named.
 *
 * @example
 * ```ts
 * ws.on('message', (data) => {
 *   const frame = JSON.parse(String(data));
 *   if (frame.type === 'error' && frame.code === FrameError.TooManyInvalidFrames) fixTheSender();
 * });
 * ```
 */
export const FrameError = {
  /** The frame is not JSON. */
  NotJson: 'SAGA_FRAME_NOT_JSON',
  /** The frame does not match the protocol (or is binary); `issues` names the fields. */
  Invalid: 'SAGA_FRAME_INVALID',
  /** A frame other than `hello` before `hello`. */
  HelloRequired: 'SAGA_HELLO_REQUIRED',
  /** A second `hello` on a connection. */
  HelloRepeated: 'SAGA_HELLO_REPEATED',
  /** A response to no request in flight (late, duplicate or unknown); not counted as invalid. */
  ResponseUnexpected: 'SAGA_RESPONSE_UNEXPECTED',
  /** A response to a request sent to another service. */
  ResponseWrongService: 'SAGA_RESPONSE_WRONG_SERVICE',
  /** An answer of the wrong kind: a `vote` to anything but a `reserve`, an `ack` to anything but a `commit` or `reject`, a `response` to either. */
  AnswerMismatch: 'SAGA_ANSWER_MISMATCH',
  /** Closes (1002): a `hello` with an unsupported protocol version. */
  ProtocolVersion: 'SAGA_PROTOCOL_VERSION',
  /** Closes (1008): `hello` names another service than the one authenticated. */
  WrongService: 'SAGA_WRONG_SERVICE',
  /** Closes (1008): `hello` declares a target outside the service. */
  ForeignTarget: 'SAGA_FOREIGN_TARGET',
  /** Closes (1008): no `hello` within `helloTimeoutMs`. */
  HelloTimeout: 'SAGA_HELLO_TIMEOUT',
  /** Closes (1008): more than `maxInvalidFrames` invalid frames within `invalidFrameWindowMs`. */
  TooManyInvalidFrames: 'SAGA_TOO_MANY_INVALID_FRAMES',
  /** Closes (1013): the peer does not read; its send buffer is over `maxBufferedBytes` (this frame is dropped). */
  SendBufferFull: 'SAGA_SEND_BUFFER_FULL',
} as const;
export type FrameErrorCode = (typeof FrameError)[keyof typeof FrameError];

/** Close codes used on both ends. */
export const CloseCode = {
  /** The broker or participant shuts down. */
  GoingAway: 1001,
  /** Unsupported protocol version. */
  ProtocolError: 1002,
  /** Wrong service in `hello`, a target outside the service, no `hello` in time, too many invalid frames. */
  PolicyViolation: 1008,
  /** A frame over `maxPayloadBytes`. */
  MessageTooBig: 1009,
  /** A peer that does not read: its send buffer passed the limit. */
  TryAgainLater: 1013,
} as const;

/** How much of a peer's own text an error frame or a log line repeats. */
export const PREVIEW_CHARS = 128;
/** At most this many issues are listed in an error frame; the message says how many more there were. */
export const MAX_ISSUES = 10;

/**
 * The start of `text`, at most `max` characters, ending in `…` when cut (so that an answer to a
 * frame is never as big as the frame).
 *
 * @example
 * ```ts
 * preview('x'.repeat(900_000)).length; // 129
 * ```
 */
export function preview(text: string, max = PREVIEW_CHARS): string {
  if (text.length <= max) return text;
  let end = max;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--; // do not cut a surrogate pair in two
  return `${text.slice(0, end)}…`;
}

/**
 * A WebSocket close reason: at most 123 bytes of UTF-8, where `message` may hold the peer's own
 * text.
 *
 * @example
 * ```ts
 * ws.close(CloseCode.PolicyViolation, closeReason(`hello says service "${service}"`));
 * ```
 */
export function closeReason(message: string): string {
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= 123) return message;
  let end = 120;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // do not cut a character in two
  return `${bytes.subarray(0, end).toString('utf8')}…`.slice(0, 121);
}

/** Frame validation outcome: the frame, or an error frame naming each wrong field. */
export type Parsed<T> = { ok: true; frame: T } | { ok: false; error: ErrorFrame };

/**
 * Parses a text frame against a union; never throws. The error frame is bounded whatever the
 * frame: at most {@link MAX_ISSUES} issues, each path and message and the echoed `requestId` cut to
 * {@link PREVIEW_CHARS} characters.
 *
 * @example
 * ```ts
 * const parsed = parseFrame(ParticipantFrame, text);
 * if (!parsed.ok) ws.send(JSON.stringify(parsed.error));
 * ```
 */
export function parseFrame<T>(schema: z.ZodType<T>, text: string): Parsed<T> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: { type: 'error', code: FrameError.NotJson, message: preview(`the frame is not JSON: ${(err as Error).message}`, 2 * PREVIEW_CHARS) } };
  }
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, frame: result.data };
  const all = result.error.issues;
  const issues = all.slice(0, MAX_ISSUES).map((i) => ({ path: preview(i.path.map(String).join('.') || '(root)'), message: preview(i.message) }));
  const more = all.length > issues.length ? ` (and ${all.length - issues.length} more)` : '';
  const requestId = (data as { requestId?: unknown } | null)?.requestId;
  return {
    ok: false,
    error: {
      type: 'error',
      code: FrameError.Invalid,
      message: `the frame does not match the protocol: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}${more}`,
      issues,
      ...(typeof requestId === 'string' ? { requestId: preview(requestId) } : {}),
    },
  };
}
