/**
 * `index.html` of a folder run: one row per image, the annotated PNG beside its verdict,
 * explanation and triplets; failed files listed with their error. Self-contained (inline CSS),
 * image links relative to the page, every text HTML-escaped.
 */
import * as path from 'node:path';
import { verdictLine } from './render';
import type { ImageFailure, ImageResult } from './types';

export function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A relative URL from the page's folder to a file: posix separators, each segment percent-encoded. */
export function relativeUrl(fromDir: string, file: string): string {
  return path.relative(fromDir, file).split(path.sep).map(encodeURIComponent).join('/');
}

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
h1 { font-size: 1.3em; }
.item { display: flex; gap: 1.5em; align-items: flex-start; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 1em; margin-bottom: 1em; }
.item img { max-width: 55%; height: auto; border: 1px solid #ccc; }
.text { flex: 1; min-width: 0; }
.verdict { font-weight: bold; padding: 0.2em 0.5em; border-radius: 4px; color: #fff; display: inline-block; }
.anomalous { background: #e0245e; } .normal { background: #27ae60; }
.explanation { margin: 0.8em 0; line-height: 1.4; }
.none { color: #888; font-style: italic; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: left; }
.failed { color: #b00020; font-family: monospace; }
`;

function tripletRows(r: ImageResult, max: number): string {
  if (r.triplets.length === 0) return '<p class="none">no triplets</p>';
  const rows = r.triplets.slice(0, max).map((t) => `<tr><td>${htmlEscape(t.subject)}</td><td>${htmlEscape(t.verb)}</td><td>${htmlEscape(t.object)}</td>`
    + `<td>${t.score.toFixed(3)}</td><td>${htmlEscape(t.anomaly ?? '-')}</td><td>${htmlEscape(t.severity ?? '-')}</td>`
    + `<td>[${t.subject_box.map((v) => v.toFixed(0)).join(', ')}]</td><td>[${t.object_box.map((v) => v.toFixed(0)).join(', ')}]</td></tr>`);
  return `<table><tr><th>subject</th><th>verb</th><th>object</th><th>score</th><th>anomaly</th><th>severity</th><th>subject box</th><th>object box</th></tr>${rows.join('')}</table>`;
}

/** The page for results (in input order) and failures; `pageDir` is where index.html goes. */
export function buildIndexHtml(pageDir: string, results: readonly ImageResult[], failures: readonly ImageFailure[], title = 'hoi2anomaly explain'): string {
  const items = results.map((r) => {
    const img = r.annotated ? `<a href="${htmlEscape(relativeUrl(pageDir, r.annotated))}"><img src="${htmlEscape(relativeUrl(pageDir, r.annotated))}" alt="${htmlEscape(path.basename(r.file))}"></a>` : '';
    const explanation = r.explanation === null
      ? '<p class="explanation none">no explanation (this export has no explainer)</p>'
      : `<p class="explanation">${htmlEscape(r.explanation)}</p>`;
    return `<div class="item">${img}<div class="text"><h2>${htmlEscape(path.basename(r.file))}</h2>`
      + `<span class="verdict ${r.verdict}">${htmlEscape(verdictLine(r))}</span>${explanation}${tripletRows(r, 10)}</div></div>`;
  });
  const failed = failures.length === 0 ? '' : `<h2>Failed (${failures.length})</h2><ul>${failures.map((f) => `<li class="failed">${htmlEscape(f.file)}: ${htmlEscape(f.error)}</li>`).join('')}</ul>`;
  const anomalous = results.filter((r) => r.verdict === 'anomalous').length;
  return `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${htmlEscape(title)}</title><style>${STYLE}</style></head><body>`
    + `<h1>${htmlEscape(title)}</h1><p>${results.length} image(s), ${anomalous} anomalous, ${failures.length} failed.</p>`
    + `${items.join('\n')}${failed}</body></html>\n`;
}
