/**
 * Decoding strategies as engine-independent state machines: a Searcher sees the logits of the
 * last position of every live row and says which token each row feeds next and which earlier row
 * (cache row) it continues. The tfjs driver (generate.ts) and an ONNX Runtime driver run the same
 * searchers, so greedy / beam / top-p behave identically on both engines.
 *
 * Rows: at the start there is one live row per batch row (fed <bos>). Greedy and top-p keep one
 * row per unfinished batch row; beam search keeps up to k rows (beams) per unfinished batch row.
 * Finished batch rows drop out, so the caches shrink as rows finish (`parents` says how to gather
 * them). Length: at most `maxLength` tokens are generated per row, <eos> included; results exclude
 * <eos>.
 *
 * - greedy: argmax (lowest id on ties).
 * - top_p: nucleus sampling; softmax(logits / temperature) in float64, the smallest set of most
 *   probable tokens whose mass reaches p (at least one), renormalized, sampled with a seeded Rng
 *   (rows in order, one draw per row and step), so a seed reproduces a run. p -> 0 is greedy.
 * - beam: Hugging Face's beam search without sampling. Per batch row, the 2k best continuations of
 *   the k beams by summed log-probability; an <eos> among the top k closes a hypothesis with score
 *   sum / length^lengthPenalty (length counts <eos>); the k best non-<eos> continuations stay
 *   alive. A row is done when it holds k hypotheses and its best live beam, scored at the current
 *   length, cannot beat the worst of them; at maxLength the live beams become hypotheses. k = 1 is
 *   greedy.
 */
import { ConfigError, ShapeError } from '../../errors';
import { Rng } from '../../data/rng';

export interface GenerateOptions {
  strategy: 'greedy' | 'beam' | 'top_p';
  /** Most tokens generated per row (<eos> included). */
  maxLength: number;
  /** Beams k (beam); default 4. */
  beamSize?: number;
  /** Nucleus mass p in (0, 1] (top_p); default 0.9. */
  topP?: number;
  /** Softmax temperature > 0 (top_p); default 1. */
  temperature?: number;
  /** Sampling seed (top_p); default 0. */
  seed?: number;
  bosId: number;
  eosId: number;
  /** Key/value cache (default true); false recomputes the whole sequence every step. */
  useCache?: boolean;
  /** Beam hypothesis score = sum log p / length^lengthPenalty; default 1. */
  lengthPenalty?: number;
}

/** What the live rows feed next: tokens[i] for new row i, which continues old row parents[i]. */
export interface SearchStep {
  tokens: number[];
  parents: number[];
}

export interface Searcher {
  /** For each live row, the batch row (of the inputs) it belongs to. */
  readonly rowBatch: number[];
  /** For each live row, the tokens generated so far (after <bos>). All live rows have the same length. */
  readonly rowTokens: number[][];
  /** Consumes logits [rows, V] (row-major) of the live rows; null when every batch row is done. */
  advance(logits: Float32Array): SearchStep | null;
  /** Per batch row, the chosen tokens (after <bos>, without <eos>). */
  results(): number[][];
}

/** Checks the options (ConfigError naming the field) and returns them with defaults. */
export function resolveGenerateOptions(opts: GenerateOptions, vocab: number): Required<GenerateOptions> {
  const r: Required<GenerateOptions> = {
    beamSize: 4, topP: 0.9, temperature: 1, seed: 0, useCache: true, lengthPenalty: 1, ...opts,
  };
  const bad = (field: string, want: string, got: unknown): never => {
    throw new ConfigError(`generate: ${field} must be ${want}, got ${String(got)}`);
  };
  if (!['greedy', 'beam', 'top_p'].includes(r.strategy)) bad('strategy', "'greedy', 'beam' or 'top_p'", r.strategy);
  if (!Number.isInteger(r.maxLength) || r.maxLength < 1) bad('maxLength', 'an integer >= 1', r.maxLength);
  if (!Number.isInteger(r.beamSize) || r.beamSize < 1) bad('beamSize', 'an integer >= 1', r.beamSize);
  if (!(r.topP > 0 && r.topP <= 1)) bad('topP', 'in (0, 1]', r.topP);
  if (!(r.temperature > 0 && Number.isFinite(r.temperature))) bad('temperature', 'a finite number > 0', r.temperature);
  if (!Number.isFinite(r.lengthPenalty)) bad('lengthPenalty', 'finite', r.lengthPenalty);
  for (const f of ['bosId', 'eosId'] as const) {
    if (!Number.isInteger(r[f]) || r[f] < 0 || r[f] >= vocab) bad(f, `a token id in [0, ${vocab})`, r[f]);
  }
  return r;
}

export function createSearcher(opts: GenerateOptions, batch: number, vocab: number): Searcher {
  const o = resolveGenerateOptions(opts, vocab);
  if (o.strategy === 'beam') return new BeamSearcher(batch, vocab, o);
  const rng = new Rng(o.seed, 'top_p');
  const choose = o.strategy === 'greedy'
    ? (row: Float32Array) => argmax(row)
    : (row: Float32Array) => sampleTopP(row, o.topP, o.temperature, rng);
  return new PerRowSearcher(batch, vocab, o, choose);
}

/** Index of the largest value (first on ties). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** log softmax in float64. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(logits, (v) => v - lse);
}

/** Nucleus sampling of one row (see the file comment). */
export function sampleTopP(logits: ArrayLike<number>, p: number, temperature: number, rng: Rng): number {
  const scaled = Float64Array.from(logits, (v) => v / temperature);
  const lp = logSoftmax(scaled);
  const order = Array.from(lp.keys()).sort((a, b) => lp[b] - lp[a] || a - b);
  const kept: number[] = [];
  let mass = 0;
  for (const i of order) {
    kept.push(i);
    mass += Math.exp(lp[i]);
    if (mass >= p) break;
  }
  let u = rng.next() * mass;
  for (const i of kept) {
    u -= Math.exp(lp[i]);
    if (u < 0) return i;
  }
  return kept[kept.length - 1]; // rounding: u landed exactly on the total
}

/** Greedy and top-p: one row per unfinished batch row. */
class PerRowSearcher implements Searcher {
  rowBatch: number[];
  rowTokens: number[][];
  private readonly done: Array<number[] | null>;

  constructor(batch: number, private readonly vocab: number, private readonly o: Required<GenerateOptions>, private readonly choose: (row: Float32Array) => number) {
    this.rowBatch = Array.from({ length: batch }, (_, b) => b);
    this.rowTokens = this.rowBatch.map(() => []);
    this.done = this.rowBatch.map(() => null);
  }

  advance(logits: Float32Array): SearchStep | null {
    checkLogits(logits, this.rowBatch.length, this.vocab);
    const next: SearchStep = { tokens: [], parents: [] };
    const rowBatch: number[] = [];
    const rowTokens: number[][] = [];
    this.rowBatch.forEach((b, r) => {
      const token = this.choose(logits.subarray(r * this.vocab, (r + 1) * this.vocab));
      const tokens = this.rowTokens[r];
      if (token === this.o.eosId) {
        this.done[b] = tokens;
        return;
      }
      const grown = [...tokens, token];
      if (grown.length >= this.o.maxLength) {
        this.done[b] = grown;
        return;
      }
      next.tokens.push(token);
      next.parents.push(r);
      rowBatch.push(b);
      rowTokens.push(grown);
    });
    this.rowBatch = rowBatch;
    this.rowTokens = rowTokens;
    return rowBatch.length > 0 ? next : null;
  }

  results(): number[][] {
    return this.done.map((d, b) => d ?? this.rowTokens[this.rowBatch.indexOf(b)] ?? []);
  }
}

interface Beam {
  tokens: number[];
  /** Sum of log-probabilities. */
  score: number;
  /** Its live row. */
  row: number;
}

interface Hypothesis {
  tokens: number[];
  score: number;
}

/** Beam search, all batch rows at once (each with its own beams and hypotheses). */
class BeamSearcher implements Searcher {
  rowBatch: number[];
  rowTokens: number[][];
  private beams: Beam[][];
  private readonly hyps: Hypothesis[][];
  private readonly finished: boolean[];
  private readonly k: number;

  constructor(batch: number, private readonly vocab: number, private readonly o: Required<GenerateOptions>) {
    this.k = o.beamSize;
    this.beams = Array.from({ length: batch }, (_, b) => [{ tokens: [], score: 0, row: b }]);
    this.hyps = this.beams.map(() => []);
    this.finished = this.beams.map(() => false);
    this.rowBatch = this.beams.map((_, b) => b);
    this.rowTokens = this.beams.map(() => []);
  }

  private addHypothesis(b: number, tokens: number[], sum: number, length: number): void {
    const list = this.hyps[b];
    list.push({ tokens, score: sum / Math.pow(Math.max(1, length), this.o.lengthPenalty) });
    list.sort((x, y) => y.score - x.score); // stable: earlier hypotheses first on ties
    if (list.length > this.k) list.pop();
  }

  advance(logits: Float32Array): SearchStep | null {
    checkLogits(logits, this.rowBatch.length, this.vocab);
    const { k, o } = this;
    const next: SearchStep = { tokens: [], parents: [] };
    const rowBatch: number[] = [];
    const rowTokens: number[][] = [];
    const newBeams: Beam[][] = this.beams.map(() => []);
    this.beams.forEach((beams, b) => {
      if (this.finished[b]) return;
      // The 2k best continuations over all beams (each beam contributes at most its own 2k best).
      const cands: Array<{ score: number; beam: number; token: number }> = [];
      beams.forEach((beam, i) => {
        const lp = logSoftmax(logits.subarray(beam.row * this.vocab, (beam.row + 1) * this.vocab));
        for (const t of topIndices(lp, 2 * k)) cands.push({ score: beam.score + lp[t], beam: i, token: t });
      });
      cands.sort((x, y) => y.score - x.score || x.beam - y.beam || x.token - y.token);
      const length = beams[0].tokens.length + 1; // after this step, <eos> included
      const alive: Beam[] = [];
      for (let rank = 0; rank < Math.min(cands.length, 2 * k) && alive.length < k; rank++) {
        const c = cands[rank];
        const parent = beams[c.beam];
        if (c.token === o.eosId) {
          if (rank < k) this.addHypothesis(b, parent.tokens, c.score, length);
          continue;
        }
        alive.push({ tokens: [...parent.tokens, c.token], score: c.score, row: parent.row });
      }
      const atMax = length >= o.maxLength;
      if (atMax) for (const a of alive) this.addHypothesis(b, a.tokens, a.score, length);
      const hyps = this.hyps[b];
      const cannotImprove = hyps.length >= k && alive.length > 0
        && alive[0].score / Math.pow(length, o.lengthPenalty) <= hyps[hyps.length - 1].score;
      if (atMax || alive.length === 0 || cannotImprove) {
        this.finished[b] = true;
        return;
      }
      for (const a of alive) {
        next.tokens.push(a.tokens[a.tokens.length - 1]);
        next.parents.push(a.row);
        const row = rowBatch.length;
        rowBatch.push(b);
        rowTokens.push(a.tokens);
        newBeams[b].push({ ...a, row });
      }
    });
    this.beams = newBeams;
    this.rowBatch = rowBatch;
    this.rowTokens = rowTokens;
    return rowBatch.length > 0 ? next : null;
  }

  results(): number[][] {
    return this.hyps.map((h) => h[0]?.tokens ?? []);
  }
}

/** Indices of the n largest values, largest first (lowest index on ties). */
function topIndices(xs: Float64Array, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    if (out.length < n || xs[i] > xs[out[out.length - 1]]) {
      let j = out.length < n ? out.length : out.length - 1;
      if (out.length < n) out.push(i);
      while (j > 0 && xs[out[j - 1]] < xs[i]) {
        out[j] = out[j - 1];
        j--;
      }
      out[j] = i;
    }
  }
  return out;
}

function checkLogits(logits: Float32Array, rows: number, vocab: number): void {
  if (logits.length !== rows * vocab) {
    throw new ShapeError(`Searcher.advance: logits for ${rows} rows x ${vocab} tokens expected, got ${logits.length} values`);
  }
}
