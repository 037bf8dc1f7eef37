/**
 * Model-based test of the execution semantics (DESIGN §3).
 *
 * A seeded generator builds saga definitions mixing local, remote and conditional steps (branches
 * nested up to 6 sagas deep). For each definition a small model walks the path the context's
 * route picks, and every executed step is made to fail in every way its kind allows, plus one run
 * where nothing fails. Each run goes through a `SagaManager` with an `InProcessBroker`; local
 * handlers and participants write `apply:<path>` / `undo:<path>` into a ledger per run, and the
 * outcome (status, ledger, failing step, step views) is checked against the model and against
 * invariants that hold whatever the model says.
 */
import { describe, expect, it } from 'vitest';
import { toDirectedGraph, type DirectedGraphNode } from 'xstate/graph';
import { compileSaga, InProcessBroker, SagaManager, SagaStatus, SagaStepStatus, type SagaExecution } from '../../src/index.js';
import { collectingLogger } from '../support/harness.js';
import {
  buildSaga,
  chosenBranch,
  definitions,
  MAX_DEPTH,
  participant,
  runId,
  simulate,
  type ConditionalSpec,
  type Data,
  type Definition,
  type Expectation,
  type FailMode,
  type FailPlan,
  type Ledgers,
  type StepSpec,
  type ViewExpectation,
} from '../support/saga-model.js';
// ---------------------------------------------------------------------------------------------
// Checking one run.

function actualViews(execution: SagaExecution, expected: readonly ViewExpectation[]): ViewExpectation[] {
  return execution.steps.map((s, i) => {
    const e = expected[i];
    const conditional = s.kind === 'conditional';
    return {
      path: s.path,
      kind: s.kind,
      parent: s.parent,
      status: e && e.path === s.path && e.status === null ? null : s.status,
      skipped: s.skipped,
      branch: s.branch,
      compensated: conditional ? null : s.compensated,
      compensationRan: conditional ? null : s.compensation !== null,
    };
  });
}

/** The invariants of DESIGN §3, and the model's prediction; returns what disagrees. */
function check(label: string, execution: SagaExecution, ledger: readonly string[], expected: Expectation): string[] {
  const problems: string[] = [];
  const fail = (what: string, want: unknown, got: unknown) =>
    problems.push(`${label}: ${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);

  // Invariants that do not need the model.
  if (execution.status !== SagaStatus.Finished && execution.status !== SagaStatus.Errored) fail('status is finished or errored', 'finished|errored', execution.status);
  const undos = ledger.filter((e) => e.startsWith('undo:')).map((e) => e.slice(5));
  const applies = ledger.filter((e) => e.startsWith('apply:')).map((e) => e.slice(6));
  if (execution.status === SagaStatus.Finished && undos.length > 0) fail('a finished saga undoes nothing', [], undos);
  if (new Set(undos).size !== undos.length) fail('each compensation runs at most once', [...new Set(undos)], undos);
  const firstUndo = ledger.findIndex((e) => e.startsWith('undo:'));
  if (firstUndo >= 0 && ledger.slice(firstUndo).some((e) => e.startsWith('apply:'))) fail('nothing is applied once the rollback started', 'no apply after the first undo', ledger);
  // Undos of steps that applied come in exact reverse order of the applies.
  const appliedUndos = undos.filter((p) => applies.includes(p));
  const reverseApplied = [...applies].reverse().filter((p) => appliedUndos.includes(p));
  if (JSON.stringify(appliedUndos) !== JSON.stringify(reverseApplied)) fail('compensations run in reverse order of execution', reverseApplied, appliedUndos);
  const mayUndo = new Set([...expected.applied, ...(expected.failing ? [expected.failing.path] : [])]);
  const stray = undos.filter((p) => !mayUndo.has(p));
  if (stray.length) fail('steps that did not execute are never compensated', [], stray);

  // The model.
  if (execution.status !== expected.status) fail('status', expected.status, execution.status);
  if (JSON.stringify(undos.map((p) => `undo:${p}`)) !== JSON.stringify(expected.undo)) fail('compensations', expected.undo, undos.map((p) => `undo:${p}`));
  if (JSON.stringify(ledger) !== JSON.stringify(expected.ledger)) fail('ledger', expected.ledger, ledger);
  if (expected.failing) {
    const failing = execution.steps.find((s) => s.path === expected.failing!.path);
    if (failing?.status !== expected.failing.status) fail(`status of failing step ${expected.failing.path}`, expected.failing.status, failing?.status);
    if (execution.error?.step !== expected.failing.path) fail('execution.error.step', expected.failing.path, execution.error?.step ?? null);
  } else if (execution.error !== null) {
    fail('execution.error', null, execution.error);
  }
  const views = actualViews(execution, expected.views);
  if (JSON.stringify(views) !== JSON.stringify(expected.views)) {
    const n = Math.max(views.length, expected.views.length);
    for (let i = 0; i < n; i++) {
      if (JSON.stringify(views[i]) !== JSON.stringify(expected.views[i])) fail(`step view #${i}`, expected.views[i] ?? null, views[i] ?? null);
    }
  }
  return problems;
}

async function settled<T>(promise: Promise<T>, ms: number): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<{ ok: false; error: unknown }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: new Error(`no outcome within ${ms} ms`) }), ms);
  });
  const outcome = promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  try {
    return await Promise.race([outcome, guard]);
  } finally {
    clearTimeout(timer);
  }
}

describe('model-based: every failure point of generated sagas', () => {
  it('generates a varied set: deep nesting, every failure kind, steps without compensation', () => {
    const points = definitions.flatMap((d) => simulate(d, null).failurePoints);
    const all: StepSpec[] = [];
    const collect = (steps: readonly StepSpec[]) => {
      for (const s of steps) {
        all.push(s);
        if (s.kind === 'conditional') for (const b of s.branches) collect(b.steps);
      }
    };
    for (const d of definitions) collect(d.steps);
    expect(Math.max(...definitions.map((d) => d.maxDepth))).toBe(MAX_DEPTH);
    // A branch 6 sagas deep is on the executed path of some definition.
    expect(points.some((p) => p.step.split('/').length === 2 * (MAX_DEPTH - 1) + 1)).toBe(true);
    expect(new Set(points.map((p) => p.mode))).toEqual(new Set<FailMode>(['execute-throws', '400', '400-error', '500', 'success-throws', 'condition-throws']));
    expect(all.some((s) => s.kind !== 'conditional' && !s.compensable)).toBe(true);
    expect(all.some((s) => s.kind === 'remote' && s.declines)).toBe(true);
    expect(all.some((s) => s.kind === 'remote' && s.skips)).toBe(true);
    expect(all.some((s) => s.kind === 'conditional' && chosenBranch(definitionOf(s), s) === null)).toBe(true);
    expect(points.length).toBeGreaterThan(300);
  });

  it('compiles every step to a state whose id is its path, with a sub-state per step status of its kind', () => {
    const problems: string[] = [];
    for (const def of definitions) {
      const saga = buildSaga(def.name, def.steps, new Map());
      const graph = toDirectedGraph(compileSaga(saga));
      const nodes = new Map<string, DirectedGraphNode>();
      const visit = (node: DirectedGraphNode) => {
        if (nodes.has(node.id)) problems.push(`${def.name}: state id ${node.id} is not unique`);
        nodes.set(node.id, node);
        node.children.forEach(visit);
      };
      visit(graph);
      const statuses = new Set<string>(Object.values(SagaStepStatus));
      const checkList = (steps: readonly StepSpec[], container: DirectedGraphNode | undefined) => {
        const keys = container?.children.map((c) => c.stateNode.key) ?? [];
        // Beside the steps: the commit decision and the two-phase commit's states (`$commit`, `$reject`).
        if (JSON.stringify(keys.filter((k) => k !== 'awaiting-commit' && !k.startsWith('$'))) !== JSON.stringify(steps.map((s) => s.name))) {
          problems.push(`${def.name}: states under ${container?.id} are ${JSON.stringify(keys)}, steps are ${JSON.stringify(steps.map((s) => s.name))}`);
        }
        for (const step of steps) {
          const node = nodes.get(step.path);
          if (!node) {
            problems.push(`${def.name}: no state with id ${step.path}`);
            continue;
          }
          if (node.stateNode.key !== step.name || container?.children.includes(node) !== true) {
            problems.push(`${def.name}: state ${step.path} is not the child "${step.name}" of ${container?.id}`);
          }
          const sub = new Map(node.children.map((c) => [c.stateNode.key, c]));
          const want = applicableStatuses(step);
          const got = [...sub.keys()].filter((k) => statuses.has(k)).sort();
          if (JSON.stringify(got) !== JSON.stringify([...want].sort())) {
            problems.push(`${def.name}: step ${step.path} has status states ${JSON.stringify(got)}, expected ${JSON.stringify([...want].sort())}`);
          }
          // The handler's outcome leads to the statuses of the kind (edges of the compiled chart).
          const expectEdges = (from: string, event: string, to: string[]) => {
            const targets = (sub.get(from)?.edges ?? []).filter((e) => e.label.text === event).map((e) => e.target.id);
            const toIds = to.map((t) => (t.startsWith('#') ? t.slice(1) : sub.get(t)?.id ?? `${step.path}.${t}?`));
            for (const id of toIds) if (!targets.includes(id)) problems.push(`${def.name}: no edge ${step.path}.${from} --${event}--> ${id}`);
          };
          if (step.kind === 'local') {
            expectEdges('running-on-execute', `xstate.done.actor.${step.path}:onExecute`, ['errored-on-execute', 'finished']);
            expectEdges('running-on-execute', `xstate.error.actor.${step.path}:onExecute`, ['errored-on-execute']);
          } else if (step.kind === 'remote') {
            expectEdges('running-on-execute', `xstate.done.actor.${step.path}:onExecute`, ['errored-on-execute', 'finished', 'finished-on-execute']);
            expectEdges('paused-by-on-execute', `xstate.done.actor.${step.path}:execute`, [
              'errored-by-on-execute',
              'finished',
              ...(step.onSuccess ? ['running-on-success'] : []),
              ...(step.onError ? ['running-on-error'] : []),
            ]);
            if (step.onSuccess) expectEdges('running-on-success', `xstate.done.actor.${step.path}:onSuccess`, ['errored-on-success', 'finished']);
            if (step.onError) expectEdges('running-on-error', `xstate.done.actor.${step.path}:onError`, ['errored-on-error', 'finished']);
          } else {
            const running = sub.get('running-on-success');
            const branchIds = step.branches.map((b) => running?.children.find((c) => c.stateNode.key === b.key)?.id ?? `${b.key}?`);
            expectEdges('running-on-execute', `xstate.done.actor.${step.path}:condition`, ['errored-on-execute', 'finished', ...branchIds.map((id) => `#${id}`)]);
            for (const branch of step.branches) {
              checkList(
                branch.steps,
                running?.children.find((c) => c.stateNode.key === branch.key),
              );
            }
          }
        }
      };
      checkList(def.steps, graph.children.find((c) => c.stateNode.key === 'running'));
    }
    expect(problems).toEqual([]);
  });

  it.each(definitions.map((d) => [d.name, d] as const))('%s: every failure point ends as the model says', async (_name, def) => {
    const ledgers: Ledgers = new Map();
    const saga = buildSaga(def.name, def.steps, ledgers);
    const broker = new InProcessBroker();
    broker.participant('svc', participant(ledgers));
    const logger = collectingLogger();
    const manager = new SagaManager({ broker, sagas: [saga], logger });
    const problems: string[] = [];
    try {
      const plans: Array<FailPlan | null> = [null, ...simulate(def, null).failurePoints];
      await Promise.all(
        plans.map(async (plan) => {
          const run = runId(plan);
          ledgers.set(run, []);
          const expected = simulate(def, plan);
          const data: Data = { run, route: def.route, fail: plan };
          const outcome = await settled(manager.run(saga, { context: data, raiseOnError: false }), 5_000);
          if (!outcome.ok) {
            problems.push(`${run}: run() did not end: ${String(outcome.error)}`);
            return;
          }
          problems.push(...check(run, outcome.value, ledgers.get(run) ?? [], expected));
        }),
      );
    } finally {
      await manager.close();
    }
    const errors = logger.lines.filter((l) => l.level === 'error');
    expect(errors).toEqual([]);
    expect(problems).toEqual([]);
  });
});

/** The definition a conditional spec belongs to (for the coverage check). */
function definitionOf(step: ConditionalSpec): Definition {
  const holds = (steps: readonly StepSpec[]): boolean =>
    steps.some((s) => s === step || (s.kind === 'conditional' && s.branches.some((b) => holds(b.steps))));
  const def = definitions.find((d) => holds(d.steps));
  if (!def) throw new Error(`no definition holds ${step.path}`);
  return def;
}

/** The step statuses that are states of a step of this kind and these hooks. */
function applicableStatuses(step: StepSpec): string[] {
  const S = SagaStepStatus;
  if (step.kind === 'conditional') return [S.Created, S.RunningOnExecute, S.ErroredOnExecute, S.RunningOnSuccess, S.Finished];
  const compensation = step.compensable ? [S.RunningOnFailure, S.ErroredOnFailure] : [];
  if (step.kind === 'local') return [S.Created, S.RunningOnExecute, S.ErroredOnExecute, S.Finished, ...compensation];
  return [
    S.Created,
    S.RunningOnExecute,
    S.FinishedOnExecute,
    S.ErroredOnExecute,
    S.PausedByOnExecute,
    S.ErroredByOnExecute,
    S.Finished,
    ...(step.onSuccess ? [S.RunningOnSuccess, S.ErroredOnSuccess] : []),
    ...(step.onError ? [S.RunningOnError, S.ErroredOnError] : []),
    ...compensation,
    ...(step.compensable ? [S.PausedOnFailure] : []),
  ];
}

