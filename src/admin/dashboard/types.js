// @ts-check
// The shapes the admin API answers with (JSDoc only: nothing here runs).

/**
 * @typedef {{ code: string, message: string }} ErrorInfo
 * @typedef {{ startedAt: number, finishedAt: number | null, error: ErrorInfo | null, attempts: number, resolved: boolean }} Compensation
 * @typedef {{ name: string, path: string, kind: string, status: string, parent: string | null, startedAt: number | null,
 *   finishedAt: number | null, error: ErrorInfo | null, attempts: number, skipped: boolean, branch: string | null,
 *   compensated: boolean, compensation: Compensation | null }} Step
 * @typedef {{ ok: boolean, finishedAt: number, parts: Array<{ service: string, outcome: string, attempts: number }>,
 *   refusal?: ErrorInfo & { service: string } }} PhaseResult
 * @typedef {{ id: string, phase: string | null, reserve?: PhaseResult, commit?: PhaseResult, reject?: PhaseResult }} Transaction
 * @typedef {{ action: string, at: number, step?: string, note?: string }} HistoryEntry
 * @typedef {{ uuid: string, sagaName: string, definitionHash: string, status: string, steps: Step[], context: unknown,
 *   error: (ErrorInfo & { step: string | null }) | null, awaitingCommit: boolean, services: string[], history: HistoryEntry[],
 *   transaction: Transaction, pausedStep: string | null, user: string | null, callbackErrors: Record<string, ErrorInfo>,
 *   createdAt: number, startedAt: number | null, finishedAt: number | null }} Execution
 * @typedef {{ requestId: string, step: string, phase: string, attempt: number, target: string, deadline: number | null }} OutgoingRequest
 * @typedef {{ at: number, event: { step: string, phase: string, attempt: number } }} Timer
 * @typedef {{ execution: Execution, outbox: OutgoingRequest[], timer: Timer | null, version: number | null,
 *   updatedAt: number | null, active: string[], chart: string | null }} Details
 * @typedef {{ execution: null, record: Summary, problem: ErrorInfo, outbox: OutgoingRequest[], timer: Timer | null }} Unreadable
 *   An execution this orchestrator cannot read (its saga or version is not registered here, or its snapshot is broken).
 * @typedef {{ id: string, key: string, type: string, tags: string[], children: ChartNode[] }} ChartNode
 * @typedef {{ machineId: string, root: ChartNode }} Chart
 * @typedef {{ uuid: string, sagaName: string, definitionHash: string, version: number, status: string,
 *   createdAt: number, updatedAt: number, deadline: number | null }} Summary
 * @typedef {{ counts: Record<string, number> | null, manager: { live: number },
 *   broker: { connections: number, inflight: number, held: number, services: string[] } | null,
 *   sagas: Array<{ name: string, hash: string }> }} Overview
 * @typedef {{ uuid: string, sagaName: string, status: string, version: number, outcome: string }} StoreEvent
 * @typedef {{ type: string, actor: string, event?: string, value?: unknown, status?: string }} InspectEvent
 * @typedef {string | Node | null | undefined | false} Child
 */

export {};
