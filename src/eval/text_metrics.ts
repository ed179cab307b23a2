/**
 * Caption metrics of generated explanations against reference responses, with the definitions
 * of coco-caption (pycocoevalcap: bleu_scorer.py, rouge.py) and of CIDEr-D (vrama91/cider,
 * ciderD_scorer.py, df mode "corpus"), so the numbers compare with published captioning results.
 * Inputs: `cands[i]` is the candidate for item i, `refs[i]` its references (one or more).
 *
 * Tokenization (tokenizeForMetrics): lower case, then numbers (`0.031`, `128`) and words (runs of
 * letters/digits, inner `-` or `'` kept: `human-object`) in order; punctuation is dropped. This
 * stands in for coco's PTB tokenizer, which also lowercases and removes punctuation tokens; keeping
 * a decimal number whole makes each box coordinate one token (`[0.031,0.217,...]` -> `0.031 0.217 ...`).
 *
 * BLEU-n (corpus level, as BleuScorer.compute_score(option='closest')): per candidate, n-gram
 * counts clipped by the maximum count in any one reference; clipped matches and candidate n-grams
 * summed over the corpus per order k; BLEU-n = (prod_{k<=n} (match_k + 1e-15) / (total_k + 1e-9))^(1/n);
 * brevity penalty exp(1 - r/c) when c < r, with c the summed candidate lengths and r the summed
 * 'closest' reference lengths (the reference length nearest the candidate's, the shorter on a tie),
 * the ratio also taken as (c + 1e-15) / (r + 1e-9). The epsilons are coco's: a zero match count
 * gives a tiny positive BLEU, not 0.
 *
 * ROUGE-L (rouge.py): per candidate, for each reference LCS / |cand| (precision) and LCS / |ref|
 * (recall); the maxima of precision and of recall over the references are taken separately (not
 * of F per reference), F = (1 + b^2) P R / (R + b^2 P) with b = 1.2, 0 when P or R is 0; averaged
 * over candidates. An empty candidate scores 0.
 *
 * CIDEr-D: n-grams n = 1..4; document frequency df(g) = number of items whose references contain
 * g; weight of g in a sentence = tf(g) * (ln N - ln max(1, df(g))) with N the number of items; per
 * order n the similarity of candidate and one reference is sum_g min(w_c(g), w_r(g)) * w_r(g)
 * (clipping) divided by |w_c| |w_r| (when both are non-zero), times the length penalty
 * exp(-(l_c - l_r)^2 / (2 * 6^2)), where l counts the sentence's bigrams as the reference code does
 * (words - 1, 0 for an empty sentence); an item's score is the mean over n of the similarities
 * summed over its references, divided by the number of references, times 10; CIDEr-D is the mean
 * over items. With one item ln N = 0, so every weight and the score are 0.
 */
import { DataError } from '../errors';

export interface BleuScores {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
}

export interface CaptionMetrics extends BleuScores {
  rougeL: number;
  ciderD: number;
}

const TOKEN = /\p{N}+(?:\.\p{N}+)?|[\p{L}\p{N}]+(?:['-][\p{L}\p{N}]+)*/gu;

/** Lower-cased word and number tokens of `text`, punctuation dropped (see the file header). */
export function tokenizeForMetrics(text: string): string[] {
  return text.toLowerCase().match(TOKEN) ?? [];
}

/** n-gram counts of orders 1..n, keyed by the tokens joined with a space (tokens hold no spaces). */
function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let k = 1; k <= n; k++) {
    for (let i = 0; i + k <= tokens.length; i++) {
      const g = tokens.slice(i, i + k).join(' ');
      counts.set(g, (counts.get(g) ?? 0) + 1);
    }
  }
  return counts;
}

const orderOf = (ngram: string): number => ngram.split(' ').length;

function checkInputs(cands: readonly string[], refs: readonly (readonly string[])[], metric: string): void {
  if (cands.length !== refs.length) throw new DataError(`${metric}: ${cands.length} candidates but ${refs.length} reference lists (one list per candidate)`);
  if (cands.length === 0) throw new DataError(`${metric}: no candidates to score`);
  refs.forEach((r, i) => {
    if (r.length === 0) throw new DataError(`${metric}: candidate ${i} has no reference`);
  });
}

// ---------------------------------------------------------------------------------------------
// BLEU

const TINY = 1e-15;
const SMALL = 1e-9;

/** Corpus BLEU-1..4 (coco-caption, 'closest' reference length). */
export function bleu(cands: readonly string[], refs: readonly (readonly string[])[]): BleuScores {
  checkInputs(cands, refs, 'BLEU');
  const n = 4;
  const correct = new Array<number>(n).fill(0);
  const guess = new Array<number>(n).fill(0);
  let testLen = 0;
  let refLen = 0;
  cands.forEach((cand, i) => {
    const c = tokenizeForMetrics(cand);
    const maxRefCounts = new Map<string, number>();
    const refLens: number[] = [];
    for (const ref of refs[i]) {
      const r = tokenizeForMetrics(ref);
      refLens.push(r.length);
      for (const [g, cnt] of ngramCounts(r, n)) maxRefCounts.set(g, Math.max(maxRefCounts.get(g) ?? 0, cnt));
    }
    testLen += c.length;
    refLen += closestLength(refLens, c.length);
    for (let k = 1; k <= n; k++) guess[k - 1] += Math.max(0, c.length - k + 1);
    for (const [g, cnt] of ngramCounts(c, n)) correct[orderOf(g) - 1] += Math.min(maxRefCounts.get(g) ?? 0, cnt);
  });
  const ratio = (testLen + TINY) / (refLen + SMALL);
  const brevity = ratio < 1 ? Math.exp(1 - 1 / ratio) : 1;
  const scores: number[] = [];
  let product = 1;
  for (let k = 0; k < n; k++) {
    product *= (correct[k] + TINY) / (guess[k] + SMALL);
    scores.push(product ** (1 / (k + 1)) * brevity);
  }
  return { bleu1: scores[0], bleu2: scores[1], bleu3: scores[2], bleu4: scores[3] };
}

/** The reference length nearest `len`; the shorter one on a tie (coco: min over (|l - len|, l)). */
function closestLength(refLens: readonly number[], len: number): number {
  let best = refLens[0];
  for (const l of refLens) {
    const d = Math.abs(l - len);
    const bd = Math.abs(best - len);
    if (d < bd || (d === bd && l < best)) best = l;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// ROUGE-L

const ROUGE_BETA = 1.2;

/** Mean ROUGE-L F over candidates (coco-caption: precision and recall maxima over references). */
export function rougeL(cands: readonly string[], refs: readonly (readonly string[])[]): number {
  checkInputs(cands, refs, 'ROUGE-L');
  let sum = 0;
  cands.forEach((cand, i) => (sum += rougeLOne(tokenizeForMetrics(cand), refs[i].map(tokenizeForMetrics))));
  return sum / cands.length;
}

function rougeLOne(c: readonly string[], refs: readonly (readonly string[])[]): number {
  if (c.length === 0) return 0;
  let precMax = 0;
  let recMax = 0;
  for (const r of refs) {
    const l = lcsLength(c, r);
    precMax = Math.max(precMax, l / c.length);
    if (r.length > 0) recMax = Math.max(recMax, l / r.length);
  }
  if (precMax === 0 || recMax === 0) return 0;
  const b2 = ROUGE_BETA ** 2;
  return ((1 + b2) * precMax * recMax) / (recMax + b2 * precMax);
}

/** Length of the longest common subsequence of two token lists (O(|a| |b|) time, O(|b|) memory). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  let cur = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

// ---------------------------------------------------------------------------------------------
// CIDEr-D

const CIDER_N = 4;
const CIDER_SIGMA = 6;

interface TfIdf {
  /** Per order 0..3: n-gram -> weight. */
  vec: Array<Map<string, number>>;
  norm: number[];
  /** Number of bigrams, the length the reference implementation uses. */
  length: number;
}

/** Mean CIDEr-D over candidates, document frequencies from this corpus' references. */
export function ciderD(cands: readonly string[], refs: readonly (readonly string[])[]): number {
  const scores = ciderDScores(cands, refs);
  return scores.reduce((a, b) => a + b, 0) / scores.length;
}

/** CIDEr-D of each candidate (same definitions as ciderD). */
export function ciderDScores(cands: readonly string[], refs: readonly (readonly string[])[]): number[] {
  checkInputs(cands, refs, 'CIDEr-D');
  const candCounts = cands.map((c) => ngramCounts(tokenizeForMetrics(c), CIDER_N));
  const refCounts = refs.map((rs) => rs.map((r) => ngramCounts(tokenizeForMetrics(r), CIDER_N)));
  const df = new Map<string, number>();
  for (const item of refCounts) {
    const seen = new Set<string>();
    for (const counts of item) for (const g of counts.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const logN = Math.log(cands.length);
  const toVec = (counts: Map<string, number>): TfIdf => {
    const vec = Array.from({ length: CIDER_N }, () => new Map<string, number>());
    const norm = new Array<number>(CIDER_N).fill(0);
    let length = 0;
    for (const [g, tf] of counts) {
      const k = orderOf(g) - 1;
      const w = tf * (logN - Math.log(Math.max(1, df.get(g) ?? 0)));
      vec[k].set(g, w);
      norm[k] += w * w;
      if (k === 1) length += tf;
    }
    return { vec, norm: norm.map(Math.sqrt), length };
  };
  return candCounts.map((counts, i) => {
    const cand = toVec(counts);
    const perOrder = new Array<number>(CIDER_N).fill(0);
    for (const refCount of refCounts[i]) {
      const ref = toVec(refCount);
      const delta = cand.length - ref.length;
      const penalty = Math.exp(-(delta * delta) / (2 * CIDER_SIGMA * CIDER_SIGMA));
      for (let k = 0; k < CIDER_N; k++) {
        let val = 0;
        for (const [g, w] of cand.vec[k]) {
          const wr = ref.vec[k].get(g) ?? 0;
          val += Math.min(w, wr) * wr;
        }
        if (cand.norm[k] !== 0 && ref.norm[k] !== 0) val /= cand.norm[k] * ref.norm[k];
        perOrder[k] += val * penalty;
      }
    }
    const mean = perOrder.reduce((a, b) => a + b, 0) / CIDER_N;
    return (mean / refCounts[i].length) * 10;
  });
}

// ---------------------------------------------------------------------------------------------

/** BLEU-1..4, ROUGE-L and CIDEr-D of the same candidates and references. */
export function captionMetrics(cands: readonly string[], refs: readonly (readonly string[])[]): CaptionMetrics {
  return { ...bleu(cands, refs), rougeL: rougeL(cands, refs), ciderD: ciderD(cands, refs) };
}
