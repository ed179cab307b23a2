/**
 * The results table quickstart prints at the end (and writes to `<out>/results.md`): one row per
 * stage with its status, wall time, key metrics and where its output is. A reused stage shows
 * the time of the run that made it, in parentheses; `total` is this run's wall time.
 */
import * as path from 'node:path';
import type { StageRecord } from './state';

export interface TableRow {
  title: string;
  /** ran | reused | resumed */
  status: string;
  record: StageRecord;
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

/** A Markdown table (aligned, so it also reads as plain text). */
export function resultsTable(rows: readonly TableRow[], out: string, totalSeconds: number): string {
  const header = ['stage', 'status', 'time', 'key metrics', 'artefact'];
  const cell = (text: string) => text.replace(/\|/g, '\\|'); // a pipe in a cell would split it
  const shown = (p: string) => {
    const rel = path.relative(process.cwd(), p);
    return rel === '' ? '.' : rel.startsWith('..') ? p : rel; // relative only below the working folder
  };
  const body = rows.map((r) => [
    r.title, r.status, r.status === 'reused' ? `(${formatSeconds(r.record.seconds)})` : formatSeconds(r.record.seconds), cell(r.record.summary), shown(path.join(out, r.record.artefact)),
  ]);
  body.push(['total', '', formatSeconds(totalSeconds), '', shown(out)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  const notes = rows.flatMap((r) => r.record.notes.map((n) => `- ${r.title}: ${n}`));
  return [line(header), rule, ...body.map(line), ...(notes.length > 0 ? ['', ...notes] : [])].join('\n');
}
