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

export const ParticipantFrame = z.discriminatedUnion('type', [HelloFrame, ResponseFrame]);
export type ParticipantFrame = z.infer<typeof ParticipantFrame>;
export type HelloFrame = z.infer<typeof HelloFrame>;
export type ResponseFrame = z.infer<typeof ResponseFrame>;

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
});

/** Orchestrator → participant: a frame was refused; the connection stays open unless closed after. */
export const ErrorFrame = z.object({
  type: z.literal('error'),
  code: z.string(),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  requestId: z.string().optional(),
});

export const OrchestratorFrame = z.discriminatedUnion('type', [WelcomeFrame, RequestFrame, ErrorFrame]);
export type OrchestratorFrame = z.infer<typeof OrchestratorFrame>;
export type RequestFrame = z.infer<typeof RequestFrame>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;

/** Close codes used on both ends. */
export const CloseCode = {
  /** The broker or participant shuts down. */
  GoingAway: 1001,
  /** Unsupported protocol version. */
  ProtocolError: 1002,
  /** Wrong service in `hello`, a target outside the service, no `hello` in time. */
  PolicyViolation: 1008,
  /** A frame over `maxPayloadBytes`. */
  MessageTooBig: 1009,
  /** A peer that does not read: its send buffer passed the limit. */
  TryAgainLater: 1013,
} as const;

/** Frame validation outcome: the frame, or an error frame naming each wrong field. */
export type Parsed<T> = { ok: true; frame: T } | { ok: false; error: ErrorFrame };

/** Parses a text frame against a union; never throws. */
export function parseFrame<T>(schema: z.ZodType<T>, text: string): Parsed<T> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return { ok: false, error: { type: 'error', code: 'SAGA_FRAME_NOT_JSON', message: `the frame is not JSON: ${(err as Error).message}` } };
  }
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, frame: result.data };
  const issues = result.error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }));
  return {
    ok: false,
    error: {
      type: 'error',
      code: 'SAGA_FRAME_INVALID',
      message: `the frame does not match the protocol: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
      ...(typeof (data as { requestId?: unknown })?.requestId === 'string' ? { requestId: (data as { requestId: string }).requestId } : {}),
    },
  };
}
