/**
 * Text generation with the tfjs explainer: greedy, beam search and top-p sampling (the strategies
 * are the engine-independent searchers of search.ts), stopping at <eos> or maxLength.
 *
 * Cached (default): encodePrefix fills one KVCache per layer, then each step feeds one token per
 * live row; when rows finish or beams reorder, the caches are gathered along the batch axis.
 * Uncached (`useCache: false`): every step recomputes the whole sequence with `forward` (the
 * reference the cache is tested against; O(T^2) work).
 *
 * The model runs in eval mode (no dropout) during generation; its previous mode is restored after
 * (as one flag for the whole tree). Every tensor made here is disposed: the tensor count is flat
 * across calls.
 */
import { tf } from '../../backend/tf';
import type { KVCache } from '../nn/attention';
import { assertShape } from '../nn/module';
import { disposePointerMemory, type PointerMemory, type VlpExplainer, type VlpInputs } from './explainer';
import { GenerateOptions, Searcher, createSearcher, resolveGenerateOptions } from './search';

export type { GenerateOptions } from './search';

/** Per batch row, the generated tokens after <bos>, excluding <eos>. */
export function generate(model: VlpExplainer, inputs: VlpInputs, opts: GenerateOptions): number[][] {
  const c = model.config;
  const o = resolveGenerateOptions(opts, model.numLogits);
  const [batch, hf, wf] = inputs.visual.shape;
  const prefixLen = model.prefixLength(hf * wf);
  assertShape(prefixLen + o.maxLength <= c.max_positions,
    () => `generate: prefix ${prefixLen} + maxLength ${o.maxLength} positions exceed model.max_positions ${c.max_positions}`);
  const searcher = createSearcher(o, batch, model.numLogits);
  const wasTraining = model.training;
  model.eval();
  try {
    if (o.useCache) decodeCached(model, inputs, searcher, prefixLen, o.bosId);
    else decodeUncached(model, inputs, searcher, o.bosId);
  } finally {
    model.train(wasTraining);
  }
  return searcher.results();
}

function decodeCached(model: VlpExplainer, inputs: VlpInputs, searcher: Searcher, prefixLen: number, bosId: number): void {
  const caches = model.newCaches();
  let pointer: PointerMemory | null = null;
  try {
    const first = model.encodePrefix(inputs, caches);
    first.logits.dispose();
    pointer = first.pointer;
    let feed = searcher.rowBatch.map(() => bosId);
    for (;;) {
      const logits = readLogits(() => model.step(tf.tensor2d(feed, [feed.length, 1], 'int32'), caches, prefixLen, pointer));
      const next = searcher.advance(logits);
      if (next === null) return;
      reorderCaches(caches, next.parents);
      pointer = reorderPointer(pointer, next.parents);
      feed = next.tokens;
    }
  } finally {
    for (const k of caches) k.dispose();
    disposePointerMemory(pointer);
  }
}

/** The pointer memory's rows by `parents` (the old tensors disposed; the same object when it is the identity). */
function reorderPointer(p: PointerMemory | null, parents: number[]): PointerMemory | null {
  if (!p || (parents.length === p.bias.shape[0] && parents.every((q, i) => q === i))) return p;
  const idx = tf.tensor1d(parents, 'int32');
  const next = { embed: tf.gather(p.embed, idx, 0), keys: tf.gather(p.keys, idx, 0), bias: tf.gather(p.bias, idx, 0) };
  idx.dispose();
  disposePointerMemory(p);
  return next;
}

function decodeUncached(model: VlpExplainer, inputs: VlpInputs, searcher: Searcher, bosId: number): void {
  for (;;) {
    const rows = searcher.rowTokens;
    const logits = readLogits(() => {
      const idx = tf.tensor1d(searcher.rowBatch, 'int32');
      const pick = <T extends tf.Tensor>(t: T): T => tf.gather(t, idx, 0) as T;
      const sub: VlpInputs = {
        visual: pick(inputs.visual), hoiSubject: pick(inputs.hoiSubject), hoiVerb: pick(inputs.hoiVerb), hoiObject: pick(inputs.hoiObject),
        hoiSubjectBox: pick(inputs.hoiSubjectBox), hoiObjectBox: pick(inputs.hoiObjectBox), instruction: pick(inputs.instruction),
      };
      const t = rows[0].length + 1;
      const response = tf.tensor2d(rows.flatMap((r) => [bosId, ...r]), [rows.length, t], 'int32'); // [rows, 1 + generated]
      const all = model.forward(sub, response); // [rows, T, V]
      return all.slice([0, t - 1, 0], [rows.length, 1, all.shape[2]]).reshape([rows.length, all.shape[2]]); // [rows, V]
    });
    if (searcher.advance(logits) === null) return;
  }
}

/** Runs `f` in a tidy and returns a copy of its values (read outside the tidy, then disposed). */
function readLogits(f: () => tf.Tensor): Float32Array {
  const t = tf.tidy(f);
  try {
    return Float32Array.from(t.dataSync() as Float32Array);
  } finally {
    t.dispose();
  }
}

/** Gathers every cache's rows by `parents` (skipped when it is the identity). */
export function reorderCaches(caches: KVCache[], parents: number[]): void {
  const rows = caches[0]?.k?.shape[0] ?? 0;
  if (parents.length === rows && parents.every((p, i) => p === i)) return;
  const idx = tf.tensor1d(parents, 'int32');
  for (const cache of caches) {
    if (!cache.k || !cache.v) continue;
    const k = tf.keep(tf.gather(cache.k, idx, 0)) as tf.Tensor4D;
    const v = tf.keep(tf.gather(cache.v, idx, 0)) as tf.Tensor4D;
    cache.k.dispose();
    cache.v.dispose();
    cache.k = k;
    cache.v = v;
  }
  idx.dispose();
}
