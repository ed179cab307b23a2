/**
 * The annotated PNG of one explained image: the image (scaled so that its longer side is 480-1600
 * px, for readable labels), subject boxes in blue and object boxes in orange, anomalous triplets
 * highlighted (red, thicker, a dashed link from subject to object), a label per box, a verdict
 * banner on top and the explanation wrapped in a band below.
 *
 * Drawing is an SVG overlay composited by sharp (librsvg), so no canvas package is needed. Every
 * text goes through `xmlEscape`. Fonts come from fontconfig (DejaVu Sans where installed); a
 * machine without fonts still gets boxes and banners.
 */
import sharp from 'sharp';
import type { DecodedImage } from '../data/image_io';
import type { Box } from '../data/record';
import type { ImageResult, TripletResult } from './types';

export const ROLE_COLORS = { subject: '#2f80ed', object: '#f2994a', anomalous: '#e0245e', normal: '#27ae60' } as const;

export interface RenderOptions {
  /** Triplets below this confidence are not drawn (the top anomalous one always is). */
  minScore?: number;
  /** At most this many triplets drawn. */
  maxDrawn?: number;
  /** Longer side of the drawing is brought into [minSide, maxSide]. */
  minSide?: number;
  maxSide?: number;
}

const DEFAULTS: Required<RenderOptions> = { minScore: 0.1, maxDrawn: 8, minSide: 480, maxSide: 1600 };

/** Escapes text for SVG/XML content and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
    // characters XML 1.0 forbids (control codes) would make librsvg reject the whole overlay
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}

/** Greedy word wrap at `maxChars` per line; words longer than a line are cut. */
export function wrapText(text: string, maxChars: number): string[] {
  const limit = Math.max(1, Math.floor(maxChars));
  const lines: string[] = [];
  for (const paragraph of text.split(/\r?\n/)) {
    let line = '';
    for (let word of paragraph.split(/\s+/).filter(Boolean)) {
      while (word.length > limit) {
        if (line) { lines.push(line); line = ''; }
        lines.push(word.slice(0, limit));
        word = word.slice(limit);
      }
      if (!line) line = word;
      else if (line.length + 1 + word.length <= limit) line += ` ${word}`;
      else { lines.push(line); line = word; }
    }
    lines.push(line);
  }
  return lines;
}

/** The triplets drawn: confident ones in score order, plus the one that decides an anomalous verdict. */
export function drawnTriplets(result: Pick<ImageResult, 'triplets' | 'verdict'>, opts: RenderOptions = {}): TripletResult[] {
  const o = { ...DEFAULTS, ...opts };
  const out = result.triplets.filter((t) => t.score >= o.minScore).slice(0, o.maxDrawn);
  if (result.verdict === 'anomalous') {
    const top = result.triplets.reduce<TripletResult | null>((best, t) => (t.anomaly_score > (best?.anomaly_score ?? 0) ? t : best), null);
    if (top && !out.includes(top)) out.push(top);
  }
  return out;
}

/** Two decimals; small non-zero values in exponent form, so 0.004 does not print as 0.00. */
function fmt(v: number): string {
  return v > 0 && v < 0.01 ? v.toExponential(1) : v.toFixed(2);
}

/** One-line verdict for banners and pages: `ANOMALOUS 0.78 >= 0.50: stab knife (assault, high)`. */
export function verdictLine(result: Pick<ImageResult, 'verdict' | 'anomaly_score' | 'threshold' | 'triplets'>): string {
  const top = result.triplets.reduce<TripletResult | null>((best, t) => (t.anomaly_score > (best?.anomaly_score ?? 0) ? t : best), null);
  const cmp = result.verdict === 'anomalous' ? '>=' : '<';
  let s = `${result.verdict.toUpperCase()} ${fmt(result.anomaly_score)} ${cmp} ${fmt(result.threshold)}`;
  if (top) s += `: ${top.subject} ${top.verb} ${top.object} (${top.anomaly}, ${top.severity})`;
  return s;
}

/** Cuts text to `maxChars` with an ellipsis (bold banner text must fit one line). */
export function truncate(text: string, maxChars: number): string {
  const n = Math.max(1, Math.floor(maxChars));
  return text.length <= n ? text : `${text.slice(0, n - 1)}\u2026`;
}

interface Layout {
  scale: number;
  width: number;
  height: number;
  font: number;
  banner: number;
  lineHeight: number;
  lines: string[];
  footer: number;
}

function layoutFor(image: DecodedImage, explanation: string, o: Required<RenderOptions>): Layout {
  const longer = Math.max(image.width, image.height);
  const scale = longer < o.minSide ? o.minSide / longer : longer > o.maxSide ? o.maxSide / longer : 1;
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  const font = Math.min(28, Math.max(12, Math.round(Math.max(width, height) / 40)));
  const lineHeight = Math.round(font * 1.35);
  // DejaVu Sans averages ~0.55 em per character
  const lines = wrapText(explanation, (width - font) / (0.56 * font));
  return { scale, width, height, font, banner: Math.round(font * 2), lineHeight, lines, footer: lines.length * lineHeight + font };
}

function rect(b: Box, s: number, dy: number, color: string, stroke: number): string {
  const x = b[0] * s, y = b[1] * s + dy, w = Math.max(1, (b[2] - b[0]) * s), h = Math.max(1, (b[3] - b[1]) * s);
  return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="${color}" stroke-width="${stroke}"/>`;
}

function label(text: string, x: number, y: number, font: number, color: string, maxX: number): string {
  const w = Math.min(maxX, text.length * 0.56 * font + font * 0.6);
  const left = Math.max(0, Math.min(x, maxX - w));
  const h = font * 1.3;
  return `<rect x="${left.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="${color}" fill-opacity="0.85"/>`
    + `<text x="${(left + font * 0.3).toFixed(1)}" y="${(y + font * 1.0).toFixed(1)}" font-size="${font}" fill="#ffffff">${xmlEscape(text)}</text>`;
}

/** The overlay SVG for a canvas of the laid-out size (exported for tests). */
export function overlaySvg(result: ImageResult, image: DecodedImage, opts: RenderOptions = {}): { svg: string; layout: Layout } {
  const o = { ...DEFAULTS, ...opts };
  const explanation = result.explanation ?? '(no explanation: this export has no explainer)';
  const L = layoutFor(image, `Explanation: ${explanation}`, o);
  const s = L.scale, dy = L.banner, W = L.width;
  const total = L.banner + L.height + L.footer;
  const parts: string[] = [];
  const thin = Math.max(2, Math.round(L.font / 6)), thick = thin * 2;
  const small = Math.max(10, Math.round(L.font * 0.8));
  const labelsAt = new Map<string, number>();
  const placeLabel = (box: Box, text: string, color: string) => {
    const key = box.join(',');
    const k = labelsAt.get(key) ?? 0;
    labelsAt.set(key, k + 1);
    const yTop = box[1] * s + dy;
    const y = (yTop - small * 1.3 * (k + 1) >= dy ? yTop - small * 1.3 * (k + 1) : yTop + small * 1.3 * k);
    parts.push(label(text, box[0] * s, y, small, color, W));
  };
  for (const t of drawnTriplets(result, o)) {
    const bad = t.anomaly !== null && t.anomaly_score > 0;
    const stroke = bad ? thick : thin;
    parts.push(rect(t.subject_box, s, dy, bad ? ROLE_COLORS.anomalous : ROLE_COLORS.subject, stroke));
    parts.push(rect(t.object_box, s, dy, bad ? ROLE_COLORS.anomalous : ROLE_COLORS.object, stroke));
    // inner line in the role colour keeps roles readable on highlighted boxes
    if (bad) {
      parts.push(rect(t.subject_box, s, dy, ROLE_COLORS.subject, Math.max(1, thin / 2)));
      parts.push(rect(t.object_box, s, dy, ROLE_COLORS.object, Math.max(1, thin / 2)));
      const c = (b: Box) => [((b[0] + b[2]) / 2) * s, ((b[1] + b[3]) / 2) * s + dy];
      const [x1, y1] = c(t.subject_box), [x2, y2] = c(t.object_box);
      parts.push(`<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${ROLE_COLORS.anomalous}" stroke-width="${thin}" stroke-dasharray="${thick * 2},${thick}"/>`);
    }
    placeLabel(t.subject_box, t.subject, ROLE_COLORS.subject);
    const tag = bad ? ` ${t.anomaly}/${t.severity}` : '';
    placeLabel(t.object_box, `${t.verb} ${t.object} ${fmt(t.score)}${tag}`, bad ? ROLE_COLORS.anomalous : ROLE_COLORS.object);
  }
  const bannerColor = result.verdict === 'anomalous' ? ROLE_COLORS.anomalous : ROLE_COLORS.normal;
  const head = `<rect x="0" y="0" width="${W}" height="${L.banner}" fill="${bannerColor}"/>`
    + `<text x="${L.font * 0.5}" y="${(L.banner * 0.68).toFixed(1)}" font-size="${L.font}" font-weight="bold" fill="#ffffff">${xmlEscape(truncate(verdictLine(result), (W - L.font) / (0.62 * L.font)))}</text>`;
  const foot = [`<rect x="0" y="${L.banner + L.height}" width="${W}" height="${L.footer}" fill="#1e1e1e"/>`];
  L.lines.forEach((line, i) => {
    const y = L.banner + L.height + L.font * 0.5 + (i + 0.8) * L.lineHeight;
    foot.push(`<text x="${L.font * 0.5}" y="${y.toFixed(1)}" font-size="${L.font}" fill="#f0f0f0">${xmlEscape(line)}</text>`);
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${total}" font-family="DejaVu Sans, Arial, sans-serif">`
    + `${head}${parts.join('')}${foot.join('')}</svg>`;
  return { svg, layout: L };
}

/** PNG bytes of the annotated image. */
export async function renderAnnotated(result: ImageResult, image: DecodedImage, opts: RenderOptions = {}): Promise<Buffer> {
  const { svg, layout: L } = overlaySvg(result, image, opts);
  const base = sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.length), { raw: { width: image.width, height: image.height, channels: 3 } });
  const scaled = L.scale === 1 ? base : base.resize(L.width, L.height, { fit: 'fill' });
  const resized = await scaled.raw().toBuffer();
  return sharp(resized, { raw: { width: L.width, height: L.height, channels: 3 } })
    .extend({ top: L.banner, bottom: L.footer, left: 0, right: 0, background: { r: 30, g: 30, b: 30 } })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toBuffer();
}
