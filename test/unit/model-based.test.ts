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
import {
  compileSaga,
  InProcessBroker,
  Saga,
  SagaBusinessError,
  SagaManager,
  SagaRequest,
  SagaStatus,
  SagaStepStatus,
  type JsonValue,
  type SagaContext,
  type SagaExecution,
} from '../../src/index.js';
import { collectingLogger } from '../support/harness.js';

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32): the same seed gives the same definitions on every machine.

interface Rng {
  next(): number;
  int(n: number): number;
  chance(p: number): boolean;
}

function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), chance: (p) => next() < p };
}

// ---------------------------------------------------------------------------------------------
// The model of a definition.

const MAX_DEPTH = 6;
const DEFINITIONS = 56;
const SEED = 0x5a6a;

interface LocalSpec {
  kind: 'local';
  name: string;
  path: string;
  parent: string | null;
  compensable: boolean;
  /** Fails by returning an Error instead of throwing one. */
  failByReturn: boolean;
}

interface RemoteSpec {
  kind: 'remote';
  name: string;
  path: string;
  parent: string | null;
  compensable: boolean;
  onSuccess: boolean;
  onError: boolean;
  /** When not made to fail, the participant answers 400 and onError returns the context (continue). */
  declines: boolean;
  /** onExecute returns nothing: the step is skipped. */
  skips: boolean;
}

interface BranchSpec {
  key: string;
  isElse: boolean;
  steps: StepSpec[];
}

interface ConditionalSpec {
  kind: 'conditional';
  name: string;
  path: string;
  parent: string | null;
  branches: BranchSpec[];
  /** Number of `ifThen` branches (they come first). */
  ifs: number;
}

type StepSpec = LocalSpec | RemoteSpec | ConditionalSpec;

interface Definition {
  index: number;
  name: string;
  steps: StepSpec[];
  /** Conditional step path -> value the conditions compare with: `< ifs` picks that ifThen branch. */
  route: Record<string, number>;
  maxDepth: number;
}

type FailMode = 'execute-throws' | '400' | '400-error' | '500' | 'success-throws' | 'condition-throws';

interface FailPlan {
  step: string;
  mode: FailMode;
}

interface Data {
  run: string;
  route: Record<string, number>;
  fail: FailPlan | null;
}

interface Gen {
  rng: Rng;
  budget: number;
  route: Record<string, number>;
  maxDepth: number;
}

function genList(g: Gen, prefix: string, parent: string | null, depth: number, spine: boolean): StepSpec[] {
  g.maxDepth = Math.max(g.maxDepth, depth);
  const count = depth === 1 ? 2 + g.rng.int(4) : 1 + g.rng.int(3);
  const spineAt = spine && depth < MAX_DEPTH ? g.rng.int(count) : -1;
  const steps: StepSpec[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0 && g.budget <= 0 && i !== spineAt) continue;
    g.budget--;
    const cond = i === spineAt || (depth < MAX_DEPTH && g.budget > 3 && g.rng.chance(0.32 - 0.04 * depth));
    const kind = cond ? 'conditional' : g.rng.chance(0.5) ? 'local' : 'remote';
    const name = `${kind[0]}${i + 1}`;
    const path = prefix + name;
    if (kind === 'local') {
      steps.push({ kind, name, path, parent, compensable: g.rng.chance(0.8), failByReturn: g.rng.chance(0.3) });
    } else if (kind === 'remote') {
      const skips = g.rng.chance(0.08);
      const onError = g.rng.chance(0.5);
      steps.push({
        kind,
        name,
        path,
        parent,
        compensable: g.rng.chance(0.8),
        onSuccess: g.rng.chance(0.6),
        onError,
        declines: !skips && onError && g.rng.chance(0.35),
        skips,
      });
    } else {
      const ifs = 1 + g.rng.int(2);
      const hasElse = g.rng.chance(0.5);
      const total = ifs + (hasElse ? 1 : 0);
      const spineBranch = i === spineAt ? g.rng.int(total) : -1;
      const branches: BranchSpec[] = [];
      for (let b = 0; b < total; b++) {
        const isElse = b === ifs;
        const key = isElse ? 'else' : `b${b}`;
        branches.push({ key, isElse, steps: genList(g, `${path}/${key}/`, path, depth + 1, b === spineBranch) });
      }
      // The value `ifs` makes every condition false: the else branch, or nothing.
      g.route[path] = spineBranch >= 0 ? spineBranch : g.rng.int(ifs + 1);
      steps.push({ kind, name, path, parent, branches, ifs });
    }
  }
  return steps;
}

function generate(index: number, rng: Rng): Definition {
  const g: Gen = { rng, budget: 10 + rng.int(18), route: {}, maxDepth: 0 };
  const steps = genList(g, '', null, 1, index % 4 === 0);
  return { index, name: `model-${index}`, steps, route: g.route, maxDepth: g.maxDepth };
}

const chosenBranch = (def: Definition, step: ConditionalSpec): BranchSpec | null => {
  const value = def.route[step.path] ?? step.ifs;
  if (value < step.ifs) return step.branches[value] ?? null;
  return step.branches.find((b) => b.isElse) ?? null;
};

// ---------------------------------------------------------------------------------------------
// Building the sagas: handlers read the failure plan from the context and write into the ledger.

type Ledgers = Map<string, string[]>;

function record(ledgers: Ledgers, run: string, entry: string): void {
  const ledger = ledgers.get(run);
  if (!ledger) throw new Error(`no ledger for run ${run}`);
  ledger.push(entry);
}

const failsAt = (ctx: SagaContext<Data>, path: string, mode: FailMode): boolean => {
  const fail = ctx.fail;
  return fail !== null && fail !== undefined && fail.step === path && fail.mode === mode;
};

/** What the participant is told to answer for a remote step in this run. */
function respondWith(ctx: SagaContext<Data>, step: RemoteSpec): number {
  const fail = ctx.fail;
  if (fail && fail.step === step.path) {
    if (fail.mode === '500') return 500;
    if (fail.mode === '400' || fail.mode === '400-error') return 400;
    return 200;
  }
  return step.declines ? 400 : 200;
}

function buildSaga(name: string, steps: readonly StepSpec[], ledgers: Ledgers): Saga<Data> {
  const saga = new Saga<Data>(name);
  for (const spec of steps) {
    const { path } = spec;
    if (spec.kind === 'local') {
      const step = saga.localStep(spec.name).onExecute((ctx) => {
        if (failsAt(ctx, path, 'execute-throws')) {
          const err = new Error(`local ${path} failed`);
          if (spec.failByReturn) return err;
          throw err;
        }
        record(ledgers, ctx.run, `apply:${path}`);
        return ctx;
      });
      if (spec.compensable) step.onFailure((ctx) => record(ledgers, ctx.run, `undo:${path}`));
    } else if (spec.kind === 'remote') {
      const step = saga.remoteStep(spec.name).onExecute((ctx) => {
        if (failsAt(ctx, path, 'execute-throws')) throw new Error(`onExecute of ${path} failed`);
        if (spec.skips) return undefined;
        return new SagaRequest('svc.do', { run: ctx.run, step: path, respond: respondWith(ctx, spec) });
      });
      if (spec.onSuccess) {
        step.onSuccess((ctx) => {
          if (failsAt(ctx, path, 'success-throws')) throw new Error(`onSuccess of ${path} failed`);
          return ctx;
        });
      }
      if (spec.onError) {
        step.onError((ctx) => {
          if (failsAt(ctx, path, '400-error')) return new Error(`onError of ${path} gives up`);
          // The refusal is accepted: the saga continues on an alternative that the orchestrator applied.
          record(ledgers, ctx.run, `apply:${path}`);
          return ctx;
        });
      }
      if (spec.compensable) step.onFailure((ctx) => new SagaRequest('svc.undo', { run: ctx.run, step: path }));
    } else {
      const step = saga.conditionalStep(spec.name);
      spec.branches.forEach((branch, i) => {
        const sub = buildSaga(branch.key, branch.steps, ledgers);
        if (branch.isElse) {
          step.elseThen(sub);
        } else {
          step.ifThen((ctx) => {
            if (failsAt(ctx, path, 'condition-throws')) throw new Error(`condition of ${path} failed`);
            return ctx.route[path] === i;
          }, sub);
        }
      });
    }
  }
  return saga.commit();
}

// ---------------------------------------------------------------------------------------------
// What the model says a run does.

interface ViewExpectation {
  path: string;
  kind: StepSpec['kind'];
  parent: string | null;
  /** `null`: not checked (a conditional step whose branch failed). */
  status: string | null;
  skipped: boolean;
  branch: string | null;
  /** Local and remote steps: the compensation ran (and succeeded). `null` for conditional steps. */
  compensated: boolean | null;
  compensationRan: boolean | null;
}

interface Expectation {
  status: 'finished' | 'errored';
  ledger: string[];
  undo: string[];
  /** Local and remote steps whose forward effect was applied, in order. */
  applied: string[];
  failing: { path: string; status: string } | null;
  views: ViewExpectation[];
  /** Every step reached when nothing fails, with the failure modes its kind allows. */
  failurePoints: FailPlan[];
}

function failureModes(step: StepSpec): FailMode[] {
  if (step.kind === 'local') return ['execute-throws'];
  if (step.kind === 'conditional') return ['condition-throws'];
  if (step.skips) return ['execute-throws'];
  return [
    'execute-throws',
    step.onError ? '400-error' : '400',
    '500',
    ...(step.onSuccess ? (['success-throws'] as const) : []),
  ];
}

const FAILING_STATUS: Record<FailMode, string> = {
  'execute-throws': SagaStepStatus.ErroredOnExecute,
  '400': SagaStepStatus.ErroredByOnExecute,
  '500': SagaStepStatus.ErroredByOnExecute,
  '400-error': SagaStepStatus.ErroredOnError,
  'success-throws': SagaStepStatus.ErroredOnSuccess,
  'condition-throws': SagaStepStatus.ErroredOnExecute,
};

function simulate(def: Definition, plan: FailPlan | null): Expectation {
  const ledger: string[] = [];
  const applied: string[] = [];
  const executed: Array<{ path: string; compensable: boolean }> = [];
  const views: ViewExpectation[] = [];
  const failurePoints: FailPlan[] = [];
  let failing: { path: string; status: string; selfCompensates: boolean } | null = null;

  const view = (step: StepSpec, status: string | null, extra: Partial<ViewExpectation> = {}): ViewExpectation => {
    const v: ViewExpectation = {
      path: step.path,
      kind: step.kind,
      parent: step.parent,
      status,
      skipped: false,
      branch: null,
      compensated: step.kind === 'conditional' ? null : false,
      compensationRan: step.kind === 'conditional' ? null : false,
      ...extra,
    };
    views.push(v);
    return v;
  };

  const walk = (steps: readonly StepSpec[]): void => {
    for (const step of steps) {
      if (failing) {
        view(step, SagaStepStatus.Created);
        continue;
      }
      for (const mode of failureModes(step)) failurePoints.push({ step: step.path, mode });
      const mode = plan && plan.step === step.path ? plan.mode : null;
      if (mode) {
        if (mode === 'success-throws') ledger.push(`apply:${step.path}`);
        const selfCompensates = step.kind === 'remote' && step.compensable && (mode === 'success-throws' || mode === '400-error');
        failing = { path: step.path, status: FAILING_STATUS[mode], selfCompensates };
        view(step, failing.status);
        continue;
      }
      if (step.kind === 'local' || step.kind === 'remote') {
        const skipped = step.kind === 'remote' && step.skips;
        if (!skipped) {
          ledger.push(`apply:${step.path}`);
          applied.push(step.path);
          executed.push({ path: step.path, compensable: step.compensable });
        }
        view(step, SagaStepStatus.Finished, { skipped });
        continue;
      }
      const branch = chosenBranch(def, step);
      const v = view(step, SagaStepStatus.Finished, { branch: branch?.key ?? null });
      if (branch) {
        walk(branch.steps);
        // How a conditional step whose branch failed reads is not part of the semantics.
        if (failing) v.status = null;
      }
    }
  };
  walk(def.steps);

  const undoPaths: string[] = [];
  const final = failing as { path: string; status: string; selfCompensates: boolean } | null;
  if (final) {
    if (final.selfCompensates) undoPaths.push(final.path);
    for (const e of [...executed].reverse()) if (e.compensable) undoPaths.push(e.path);
  }
  const undone = new Set(undoPaths);
  for (const v of views) {
    if (v.kind === 'conditional') continue;
    v.compensated = undone.has(v.path);
    v.compensationRan = undone.has(v.path);
  }
  const undo = undoPaths.map((p) => `undo:${p}`);
  return {
    status: final ? 'errored' : 'finished',
    ledger: [...ledger, ...undo],
    undo,
    applied,
    failing: final ? { path: final.path, status: final.status } : null,
    views,
    failurePoints,
  };
}

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

function runId(plan: FailPlan | null): string {
  return plan ? `${plan.mode}@${plan.step}` : 'all-success';
}

// ---------------------------------------------------------------------------------------------

const rng = mulberry32(SEED);
const definitions = Array.from({ length: DEFINITIONS }, (_, i) => generate(i, rng));

function participant(ledgers: Ledgers) {
  const parse = (content: JsonValue) => content as { run: string; step: string; respond?: number };
  return {
    'svc.do': (content: JsonValue) => {
      const c = parse(content);
      if (c.respond === 400) throw new SagaBusinessError(`${c.step} refused`, { step: c.step });
      if (c.respond === 500) throw new Error(`${c.step} crashed`);
      record(ledgers, c.run, `apply:${c.step}`);
      return { done: c.step };
    },
    'svc.undo': (content: JsonValue) => {
      const c = parse(content);
      record(ledgers, c.run, `undo:${c.step}`);
      return { undone: c.step };
    },
  };
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
        if (JSON.stringify(keys.filter((k) => k !== 'awaiting-commit')) !== JSON.stringify(steps.map((s) => s.name))) {
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
