/**
 * The model of saga executions shared by the model-based and differential tests: a seeded
 * generator of saga definitions mixing local, remote and conditional steps (branches nested up to
 * 6 sagas deep), the sagas built from them (handlers and participants write `apply:<path>` /
 * `undo:<path>` into a ledger per run), and a model that says what a run with a given failure
 * plan must do.
 */
import {
  Saga,
  SagaBusinessError,
  SagaRequest,
  SagaStepStatus,
  type JsonValue,
  type SagaContext,
} from '../../src/index.js';

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (mulberry32): the same seed gives the same definitions on every machine.

export interface Rng {
  next(): number;
  int(n: number): number;
  chance(p: number): boolean;
}

export function mulberry32(seed: number): Rng {
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

export const MAX_DEPTH = 6;
export const DEFINITIONS = 56;
export const SEED = 0x5a6a;

export interface LocalSpec {
  kind: 'local';
  name: string;
  path: string;
  parent: string | null;
  compensable: boolean;
  /** Fails by returning an Error instead of throwing one. */
  failByReturn: boolean;
}

export interface RemoteSpec {
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

export interface BranchSpec {
  key: string;
  isElse: boolean;
  steps: StepSpec[];
}

export interface ConditionalSpec {
  kind: 'conditional';
  name: string;
  path: string;
  parent: string | null;
  branches: BranchSpec[];
  /** Number of `ifThen` branches (they come first). */
  ifs: number;
}

export type StepSpec = LocalSpec | RemoteSpec | ConditionalSpec;

export interface Definition {
  index: number;
  name: string;
  steps: StepSpec[];
  /** Conditional step path -> value the conditions compare with: `< ifs` picks that ifThen branch. */
  route: Record<string, number>;
  maxDepth: number;
}

export type FailMode = 'execute-throws' | '400' | '400-error' | '500' | 'success-throws' | 'condition-throws';

export interface FailPlan {
  step: string;
  mode: FailMode;
}

export interface Data {
  run: string;
  route: Record<string, number>;
  fail: FailPlan | null;
}

export interface Gen {
  rng: Rng;
  budget: number;
  route: Record<string, number>;
  maxDepth: number;
}

export function genList(g: Gen, prefix: string, parent: string | null, depth: number, spine: boolean): StepSpec[] {
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

export function generate(index: number, rng: Rng): Definition {
  const g: Gen = { rng, budget: 10 + rng.int(18), route: {}, maxDepth: 0 };
  const steps = genList(g, '', null, 1, index % 4 === 0);
  return { index, name: `model-${index}`, steps, route: g.route, maxDepth: g.maxDepth };
}

export const chosenBranch = (def: Definition, step: ConditionalSpec): BranchSpec | null => {
  const value = def.route[step.path] ?? step.ifs;
  if (value < step.ifs) return step.branches[value] ?? null;
  return step.branches.find((b) => b.isElse) ?? null;
};

// ---------------------------------------------------------------------------------------------
// Building the sagas: handlers read the failure plan from the context and write into the ledger.

export type Ledgers = Map<string, string[]>;

export function record(ledgers: Ledgers, run: string, entry: string): void {
  const ledger = ledgers.get(run);
  if (!ledger) throw new Error(`no ledger for run ${run}`);
  ledger.push(entry);
}

export const failsAt = (ctx: SagaContext<Data>, path: string, mode: FailMode): boolean => {
  const fail = ctx.fail;
  return fail !== null && fail !== undefined && fail.step === path && fail.mode === mode;
};

/** What the participant is told to answer for a remote step in this run. */
export function respondWith(ctx: SagaContext<Data>, step: RemoteSpec): number {
  const fail = ctx.fail;
  if (fail && fail.step === step.path) {
    if (fail.mode === '500') return 500;
    if (fail.mode === '400' || fail.mode === '400-error') return 400;
    return 200;
  }
  return step.declines ? 400 : 200;
}

export function buildSaga(name: string, steps: readonly StepSpec[], ledgers: Ledgers): Saga<Data> {
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

export interface ViewExpectation {
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

export interface Expectation {
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

export function failureModes(step: StepSpec): FailMode[] {
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

export const FAILING_STATUS: Record<FailMode, string> = {
  'execute-throws': SagaStepStatus.ErroredOnExecute,
  '400': SagaStepStatus.ErroredByOnExecute,
  '500': SagaStepStatus.ErroredByOnExecute,
  '400-error': SagaStepStatus.ErroredOnError,
  'success-throws': SagaStepStatus.ErroredOnSuccess,
  'condition-throws': SagaStepStatus.ErroredOnExecute,
};

export function simulate(def: Definition, plan: FailPlan | null): Expectation {
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

export function runId(plan: FailPlan | null): string {
  return plan ? `${plan.mode}@${plan.step}` : 'all-success';
}

// ---------------------------------------------------------------------------------------------

const rng = mulberry32(SEED);
/** The generated definitions: the same on every machine. */
export const definitions = Array.from({ length: DEFINITIONS }, (_, i) => generate(i, rng));

export function participant(ledgers: Ledgers) {
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


/**
 * The model's participant, counting per requestId how often a handler applied its effect (a 400
 * or a 500 applies nothing, and may be asked again): for the chaos tests, where each request must
 * be applied once.
 */
export function countingParticipant(ledgers: Ledgers, applied: Map<string, number>) {
  const handlers = participant(ledgers);
  const counted =
    (handler: (content: JsonValue) => JsonValue) =>
    (content: JsonValue, info: { requestId: string }): JsonValue => {
      const answer = handler(content);
      applied.set(info.requestId, (applied.get(info.requestId) ?? 0) + 1);
      return answer;
    };
  return { 'svc.do': counted(handlers['svc.do']), 'svc.undo': counted(handlers['svc.undo']) };
}
