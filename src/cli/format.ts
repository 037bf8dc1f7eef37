import type { SagaListPage, SagaStepView, TransactionPhaseResult } from '../index.js';
import type { ActionJson, DescribeJson, OverviewJson } from './client.js';

type Style = 'red' | 'green' | 'yellow' | 'cyan' | 'dim' | 'bold';
const CODES: Record<Style, [number, number]> = { red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39], dim: [2, 22], bold: [1, 22] };

/** Colours only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export const useColour = (stream: NodeJS.WriteStream = process.stdout): boolean => stream.isTTY === true && !process.env.NO_COLOR;

/** A cell of text with its style, measured without its escape codes. */
interface Cell {
  text: string;
  style?: Style | undefined;
}

/**
 * Turns the admin API's answers into text for a terminal: aligned columns, times in UTC, colours
 * when `colour` is on.
 *
 * @example
 * ```ts
 * process.stdout.write(new Formatter(useColour()).execution(await client.describe(uuid)));
 * ```
 */
export class Formatter {
  constructor(readonly colour: boolean) {}

  paint(text: string, style: Style | undefined): string {
    if (!this.colour || !style || !text) return text;
    const [on, off] = CODES[style];
    return `\u001b[${on}m${text}\u001b[${off}m`;
  }

  table(header: string[], rows: Array<Array<Cell | string>>): string {
    const cells = rows.map((row) => row.map((c) => (typeof c === 'string' ? { text: c } : c)));
    const widths = header.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]?.text.length ?? 0)));
    const line = (row: Cell[]) =>
      row
        .map((c, i) => this.paint(c.text, c.style) + (i === row.length - 1 ? '' : ' '.repeat(widths[i]! - c.text.length)))
        .join('  ')
        .trimEnd();
    return [line(header.map((text) => ({ text, style: 'dim' as const }))), ...cells.map(line)].map((l) => `  ${l}`).join('\n') + '\n';
  }

  list(page: SagaListPage): string {
    if (!page.items.length) return 'No executions match.\n';
    const rows = page.items.map((s) => [s.uuid, `${s.sagaName}@${s.definitionHash}`, status(s.status), time(s.createdAt), time(s.updatedAt), s.deadline === null ? '' : time(s.deadline)]);
    let out = this.table(['UUID', 'SAGA', 'STATUS', 'CREATED', 'UPDATED', 'DEADLINE'], rows);
    if (page.cursor) out += this.paint(`More: add --cursor ${page.cursor}\n`, 'dim');
    return out;
  }

  counts(overview: OverviewJson): string {
    if (!overview.counts) return 'The repository of this server cannot count executions.\n';
    const entries = Object.entries(overview.counts);
    const total = entries.reduce((sum, [, n]) => sum + n, 0);
    return this.table(['STATUS', 'EXECUTIONS'], [...entries.map(([s, n]) => [status(s), String(n)]), [{ text: 'total', style: 'bold' }, { text: String(total), style: 'bold' }]]);
  }

  execution(details: DescribeJson): string {
    const e = details.execution;
    if (!e) return this.#unreadable(details);
    const lines: string[] = [];
    const head = (title: string) => lines.push('', this.paint(title, 'bold'));
    lines.push(`${this.paint(e.sagaName, 'bold')} ${e.uuid}  ${this.paint(e.status, statusStyle(e.status))}${e.awaitingCommit ? this.paint('  awaiting commit decision', 'yellow') : ''}`);
    const facts: Array<[string, string]> = [
      ['definition', `${e.sagaName}@${e.definitionHash}${details.version === null ? '' : `  version ${details.version}`}`],
      ['user', e.user ?? '-'],
      ['created', time(e.createdAt)],
      ['started', e.startedAt === null ? '-' : time(e.startedAt)],
      ['finished', e.finishedAt === null ? '-' : `${time(e.finishedAt)}  (took ${duration((e.startedAt ?? e.createdAt), e.finishedAt)})`],
    ];
    if (details.updatedAt !== null) facts.push(['updated', time(details.updatedAt)]);
    if (e.pausedStep) facts.push(['waiting on', e.pausedStep]);
    if (e.error) facts.push(['error', this.paint(`${e.error.code}${e.error.step ? ` at ${e.error.step}` : ''}: ${e.error.message}`, 'red')]);
    for (const [hook, err] of Object.entries(e.callbackErrors)) if (err) facts.push([`${hook} callback`, this.paint(`${err.code}: ${err.message}`, 'red')]);
    if (details.value !== null && details.value !== undefined) facts.push(['chart state', statePaths(details.value).join(', ')]);
    const width = Math.max(...facts.map(([k]) => k.length));
    for (const [key, value] of facts) lines.push(`  ${this.paint(key.padEnd(width), 'dim')}  ${value}`);

    head('Steps');
    lines.push(this.table(['STEP', 'KIND', 'STATUS', 'ATTEMPTS', 'DURATION', 'ERROR'], e.steps.map((s) => this.#stepRow(s))).trimEnd());
    const compensations = e.steps.filter((s) => s.compensation !== null);
    if (compensations.length) {
      head('Compensations');
      lines.push(this.table(['STEP', 'STATUS', 'ATTEMPTS', 'DURATION', 'ERROR'], compensations.map((s) => this.#compensationRow(s))).trimEnd());
    }
    const phases = (['reserve', 'commit', 'reject'] as const).filter((p) => e.transaction[p]);
    if (phases.length || e.transaction.phase) {
      head(`Transaction${e.transaction.phase ? `  (${e.transaction.phase} under way)` : ''}`);
      lines.push(this.table(['PHASE', 'RESULT', 'FINISHED', 'SERVICES'], phases.map((p) => this.#phaseRow(p, e.transaction[p]!))).trimEnd());
    }
    if (e.history.length) {
      head('History');
      for (const h of e.history) lines.push(`  ${time(h.at)}  ${h.action}${h.step ? ` ${h.step}` : ''}${h.note ? `  "${h.note}"` : ''}`);
    }
    lines.push(...this.#waits(details));
    return lines.join('\n') + '\n';
  }

  /** An execution the server cannot read: what is stored of it, and why. */
  #unreadable(details: DescribeJson): string {
    const r = details.record;
    const lines = [
      `${this.paint(r?.sagaName ?? '?', 'bold')} ${r?.uuid ?? ''}  ${this.paint(r?.status ?? '?', statusStyle(r?.status ?? ''))}`,
      this.paint(`  cannot be read here: ${details.problem?.code ?? ''}: ${details.problem?.message ?? ''}`, 'red'),
    ];
    if (r) lines.push(`  ${this.paint('definition', 'dim')}  ${r.sagaName}@${r.definitionHash}  version ${r.version}`, `  ${this.paint('created', 'dim')}     ${time(r.createdAt)}`, `  ${this.paint('updated', 'dim')}     ${time(r.updatedAt)}`);
    lines.push(...this.#waits(details));
    return lines.join('\n') + '\n';
  }

  #waits(details: DescribeJson): string[] {
    if (!details.outbox.length && !details.timer) return [];
    const lines = ['', this.paint('Waiting for', 'bold')];
    for (const r of details.outbox) lines.push(`  ${r.target}  ${r.phase} of ${r.step}, attempt ${r.attempt}${r.deadline === null ? '' : `, due ${time(r.deadline)}`}  ${this.paint(r.requestId, 'dim')}`);
    const t = details.timer;
    if (t) lines.push(`  timer at ${time(t.at)}: ${t.event.phase} of ${t.event.step}, attempt ${t.event.attempt}`);
    return lines;
  }

  action(answer: ActionJson): string {
    const e = answer.execution;
    const lines = [`${answer.action} ${e.uuid}: ${this.paint(e.status, statusStyle(e.status))}${e.error ? `  (${e.error.code})` : ''}`];
    if (answer.pending) lines.push(this.paint(`Accepted, still under way (the server answered 202 pending): follow it with \`sagachart show ${e.uuid}\`.`, 'yellow'));
    if (answer.outcome) lines.push(this.paint(`${answer.outcome.code}: ${answer.outcome.message}`, 'red'));
    const width = Math.max(...e.steps.map((s) => s.path.length));
    lines.push(...e.steps.map((s) => `  ${s.path.padEnd(width)}  ${stepStatus(s)}`));
    return lines.join('\n') + '\n';
  }

  #stepRow(s: SagaStepView): Cell[] {
    return [
      { text: s.path },
      { text: s.kind, style: 'dim' },
      { text: stepStatus(s), style: s.status.startsWith('errored') ? 'red' : s.compensated ? 'yellow' : s.status === 'finished' ? 'green' : undefined },
      { text: s.kind === 'remote' ? String(s.attempts) : '' },
      { text: s.startedAt !== null && s.finishedAt !== null ? duration(s.startedAt, s.finishedAt) : '' },
      { text: s.error ? `${s.error.code}: ${s.error.message}` : '', style: 'red' },
    ];
  }

  #compensationRow(s: SagaStepView): Cell[] {
    const c = s.compensation!;
    const state = s.compensated ? 'compensated' : c.resolved ? 'resolved by hand' : c.error ? 'failed' : c.finishedAt === null ? 'running' : 'done';
    return [
      { text: s.path },
      { text: state, style: state === 'failed' ? 'red' : state === 'running' ? 'yellow' : 'green' },
      { text: String(c.attempts) },
      { text: c.finishedAt === null ? '' : duration(c.startedAt, c.finishedAt) },
      { text: c.error ? `${c.error.code}: ${c.error.message}` : '', style: 'red' },
    ];
  }

  #phaseRow(phase: string, result: TransactionPhaseResult): Cell[] {
    const parts = result.parts.map((p) => `${p.service} ${p.outcome}${p.attempts > 1 ? ` x${p.attempts}` : ''}`).join(', ');
    const refusal = result.refusal ? `; refused by ${result.refusal.service}: ${result.refusal.code}` : '';
    return [{ text: phase }, { text: result.ok ? 'ok' : 'failed', style: result.ok ? 'green' : 'red' }, { text: time(result.finishedAt) }, { text: parts + refusal }];
  }
}

function stepStatus(s: SagaStepView): string {
  const marks = [s.skipped ? 'skipped' : '', s.branch ? `branch ${s.branch}` : '', s.compensated ? 'compensated' : ''].filter(Boolean);
  return marks.length ? `${s.status} (${marks.join(', ')})` : s.status;
}

/** The chart's active states as dotted paths: `running.charge.paused-by-on-execute`. */
function statePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (typeof value !== 'object' || value === null) return [];
  const paths = Object.entries(value).flatMap(([key, inner]) => statePaths(inner, `${prefix}${key}.`));
  return paths.length ? paths : [prefix.slice(0, -1)];
}

function status(s: string): Cell {
  return { text: s, style: statusStyle(s) };
}

function statusStyle(s: string): Style | undefined {
  return s === 'finished' ? 'green' : s === 'errored' ? 'red' : s === 'running' || s === 'paused' ? 'yellow' : undefined;
}

/** An instant as UTC, to the millisecond: `2026-12-02 16:29:03.123Z`. */
export function time(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ');
}

/** `12 ms`, `1.2 s`, `3 min 4 s`, `2 h 5 min`. */
export function duration(from: number, to: number): string {
  const ms = Math.max(0, to - from);
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.floor((ms % 60_000) / 1_000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`;
}
