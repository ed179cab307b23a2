/**
 * A small, deterministic byte-pair-encoding trainer (Sennrich et al. 2016, as the Hugging Face
 * `tokenizers` BpeTrainer does it), in plain TypeScript.
 *
 * Why our own: the `tokenizers` npm package (native bindings, the one with a trainer) is broken as
 * published (its linux binary is missing), and `@huggingface/tokenizers` (pure JS) only encodes and
 * decodes. The trainer is small: count the pre-tokenized words, then repeatedly merge the most
 * frequent adjacent symbol pair.
 *
 * Determinism: the result depends only on the multiset of words, never on insertion order, Map
 * iteration order or the platform. Ties between pairs of equal count go to the pair whose left
 * symbol, then right symbol, is smallest in UTF-16 code unit order (JS `<` on strings).
 *
 * Cost: a lazy max-heap over pair counts plus a pair -> words index, so each merge touches only
 * the words that contain the pair (as in the Rust trainer). Training on a few thousand template
 * responses takes well under a second.
 */
import { ConfigError } from '../../errors';

export interface BpeTrainOptions {
  /** Initial symbols (every one becomes a token, in this order), e.g. the 256 byte-level characters. */
  alphabet: readonly string[];
  /** Number of merges to learn at most. */
  maxMerges: number;
  /** A pair seen fewer times than this (counted with word frequencies) is never merged. Default 2. */
  minFrequency?: number;
}

export interface BpeTrainResult {
  /** Learned merges in rank order: `[left, right]`, their concatenation is a new token. */
  merges: Array<[string, string]>;
  /** Alphabet then merged tokens, in id order (without special tokens). */
  tokens: string[];
  /** Why training stopped: the merge budget, or no pair left at or above minFrequency. */
  stoppedBy: 'max_merges' | 'min_frequency';
}

/** A pair key: two symbol ids packed in one number (ids stay below 2^21, far above any vocabulary). */
const SHIFT = 2 ** 21;
const pairKey = (a: number, b: number): number => a * SHIFT + b;

interface Word {
  symbols: number[];
  count: number;
}

interface HeapEntry {
  key: number;
  count: number;
}

/**
 * Learns merges over `words` (a word -> frequency map; a word is a string of alphabet symbols,
 * one UTF-16 code unit or code point each). Words with a symbol outside the alphabet are an error.
 */
export function trainBpe(words: ReadonlyMap<string, number>, opts: BpeTrainOptions): BpeTrainResult {
  const minFrequency = opts.minFrequency ?? 2;
  if (!Number.isInteger(opts.maxMerges) || opts.maxMerges < 0) throw new ConfigError(`BPE trainer: maxMerges must be a non-negative integer, found ${opts.maxMerges}`);
  if (!(minFrequency >= 1)) throw new ConfigError(`BPE trainer: minFrequency must be >= 1, found ${minFrequency}`);

  const tokens: string[] = [];
  const idOf = new Map<string, number>();
  for (const s of opts.alphabet) {
    if (idOf.has(s)) throw new ConfigError(`BPE trainer: alphabet symbol ${JSON.stringify(s)} is listed twice`);
    idOf.set(s, tokens.length);
    tokens.push(s);
  }

  // words sorted by text: the order of the pair -> words index no longer depends on the caller
  const list: Word[] = [...words.entries()]
    .filter(([, count]) => count > 0)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([text, count]) => ({
      count,
      symbols: Array.from(text, (ch) => {
        const id = idOf.get(ch);
        if (id === undefined) throw new ConfigError(`BPE trainer: word ${JSON.stringify(text)} has symbol ${JSON.stringify(ch)} outside the alphabet`);
        return id;
      }),
    }));

  const counts = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: 1 | -1, changed: Set<number>) => {
    const { symbols, count } = list[w];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const k = pairKey(symbols[i], symbols[i + 1]);
      counts.set(k, (counts.get(k) ?? 0) + sign * count);
      changed.add(k);
      if (sign > 0) {
        let set = where.get(k);
        if (!set) where.set(k, (set = new Set()));
        set.add(w);
      }
    }
  };

  // max-heap: higher count first, then the smaller (left, right) strings
  const better = (x: HeapEntry, y: HeapEntry): boolean => {
    if (x.count !== y.count) return x.count > y.count;
    const xa = tokens[Math.floor(x.key / SHIFT)];
    const ya = tokens[Math.floor(y.key / SHIFT)];
    if (xa !== ya) return xa < ya;
    return tokens[x.key % SHIFT] < tokens[y.key % SHIFT];
  };
  const heap = new BinaryHeap<HeapEntry>(better);
  const pushChanged = (changed: Set<number>) => {
    for (const k of changed) {
      const c = counts.get(k) ?? 0;
      if (c > 0) heap.push({ key: k, count: c });
      else counts.delete(k);
    }
  };

  const initial = new Set<number>();
  list.forEach((_, w) => addPairs(w, 1, initial));
  pushChanged(initial);

  const merges: Array<[string, string]> = [];
  let stoppedBy: BpeTrainResult['stoppedBy'] = 'min_frequency';
  while (true) {
    if (merges.length >= opts.maxMerges) {
      stoppedBy = 'max_merges';
      break;
    }
    // lazy deletion: an entry is current only if its count is the pair's count now
    let top: HeapEntry | undefined;
    while ((top = heap.pop()) !== undefined && counts.get(top.key) !== top.count);
    if (top === undefined || top.count < minFrequency) break;

    const a = Math.floor(top.key / SHIFT);
    const b = top.key % SHIFT;
    const merged = tokens[a] + tokens[b];
    // two different pairs can spell the same token ("a"+"bc", "ab"+"c"): keep one id per string
    let id = idOf.get(merged);
    if (id === undefined) {
      id = tokens.length;
      tokens.push(merged);
      idOf.set(merged, id);
    }
    merges.push([tokens[a], tokens[b]]);

    const changed = new Set<number>();
    const affected = [...(where.get(top.key) ?? [])].sort((x, y) => x - y);
    where.delete(top.key);
    for (const w of affected) {
      const symbols = list[w].symbols;
      if (!containsPair(symbols, a, b)) continue; // stale index entry
      addPairs(w, -1, changed);
      list[w].symbols = mergePair(symbols, a, b, id);
      addPairs(w, 1, changed);
    }
    counts.delete(top.key);
    changed.delete(top.key);
    pushChanged(changed);
  }
  return { merges, tokens, stoppedBy };
}

function containsPair(symbols: readonly number[], a: number, b: number): boolean {
  for (let i = 0; i + 1 < symbols.length; i++) if (symbols[i] === a && symbols[i + 1] === b) return true;
  return false;
}

/** Replaces non-overlapping occurrences of (a, b) left to right by `id` (as the BPE encoder applies a merge). */
export function mergePair(symbols: readonly number[], a: number, b: number, id: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) {
      out.push(id);
      i++;
    } else {
      out.push(symbols[i]);
    }
  }
  return out;
}

/** Array-backed binary heap; `before(x, y)` is true when x must pop before y. */
class BinaryHeap<T> {
  private readonly items: T[] = [];
  constructor(private readonly before: (x: T, y: T) => boolean) {}

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      while (true) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l], items[best])) best = l;
        if (r < items.length && this.before(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}
