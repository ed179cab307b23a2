/**
 * The explainer on ONNX Runtime: vlp_prefix.onnx (image + HOI slots + instruction -> logits of the
 * last prefix position and the present k/v of every layer; it embeds the extractor backbone, so the
 * image goes in as the extractor's own input) and vlp_decoder.onnx (one token over the past k/v),
 * driven by the engine-independent searchers of models/vlp/search.ts exactly like the tfjs
 * `generate`: <bos> is fed at position P (the prefix graph's logits predict <bos> and are ignored),
 * then each step's tokens at P + 1, P + 2, ..., the past k/v rows gathered by the searcher's
 * `parents` when rows finish or beams reorder.
 *
 * `OnnxVlpRunner` is shared by the explanation engine and by `export onnx`'s parity check.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataError } from '../errors';
import { VLP_ONNX_NAMES as N } from '../models/vlp/explainer_onnx';
import { createSearcher, type GenerateOptions } from '../models/vlp/search';
import { VlpTokenizer } from '../models/vlp/tokenizer';
import { oneLine } from './engines';
import type { ExplainerInput, ExplanationEngine } from './explainer_hook';
import { type ExplainerArrays, explainerArrays, explainerGenerateOptions, explainerSlots, explainerText } from './explainer_inputs';
import { EXTRACTOR_INPUT_NAME, type ExplainerSection, type ExportManifest, VLP_DECODER_ONNX_FILE, VLP_PREFIX_ONNX_FILE } from './manifest';

/** Past (or present) keys and values of every layer: [rows, heads, length, head_dim] each. */
export type PastKv = Array<{ key: ort.Tensor; value: ort.Tensor }>;

/** The box pointer's per-image tensors (box_pointer models): pointer_embed, pointer_keys [rows, 2M, C], pointer_bias [rows, 2M]. */
export interface PointerFeeds {
  embed: ort.Tensor;
  keys: ort.Tensor;
  bias: ort.Tensor;
}

/** Logits [rows, V (+ 2M)] of the last position and the k/v after it; the prefix graph also gives the pointer memory. */
export interface StepOutput {
  logits: Float32Array;
  past: PastKv;
  pointer: PointerFeeds | null;
}

function int64(data: Int32Array | readonly number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(data as ArrayLike<number>, (v) => BigInt(v)), dims);
}

async function openSession(file: string, threads: number): Promise<ort.InferenceSession> {
  if (!fs.existsSync(file)) throw new DataError(`${file}: ONNX model not found`);
  try {
    return await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  } catch (err) {
    throw new DataError(`${file}: onnxruntime cannot load the model (${oneLine(err)})`, { cause: err });
  }
}

/** Rows `parents` of a [rows, ...] float32 tensor, in that order. */
export function gatherRows(t: ort.Tensor, parents: readonly number[]): ort.Tensor {
  const [rows, ...rest] = t.dims;
  const per = rest.reduce((a, b) => a * b, 1);
  const src = t.data as Float32Array;
  const out = new Float32Array(parents.length * per);
  parents.forEach((p, i) => {
    if (!(p >= 0 && p < rows)) throw new DataError(`gatherRows: row ${p} of ${rows}`);
    out.set(src.subarray(p * per, (p + 1) * per), i * per);
  });
  return new ort.Tensor('float32', out, [parents.length, ...rest]);
}

export class OnnxVlpRunner {
  private constructor(
    private readonly prefixSession: ort.InferenceSession,
    private readonly decoderSession: ort.InferenceSession,
    readonly layers: number,
    readonly vocab: number,
    readonly boxInputs: boolean,
    /** The graphs carry the box pointer (prefix outputs / decoder inputs pointer_*). */
    readonly boxPointer: boolean,
  ) {}

  /** Sessions over the two graphs; the layer count and box inputs are read from the graphs' names. */
  static async create(prefixFile: string, decoderFile: string, vocab: number, threads = 2): Promise<OnnxVlpRunner> {
    const prefix = await openSession(prefixFile, threads);
    let decoder: ort.InferenceSession;
    try {
      decoder = await openSession(decoderFile, threads);
    } catch (err) {
      await prefix.release();
      throw err;
    }
    const layers = prefix.outputNames.filter((n) => /^present_key_\d+$/.test(n)).length;
    const problems: string[] = [];
    const needIn = [EXTRACTOR_INPUT_NAME, N.hoiSubject, N.hoiVerb, N.hoiObject, N.instruction].filter((n) => !prefix.inputNames.includes(n));
    if (needIn.length > 0) problems.push(`${prefixFile}: inputs ${needIn.join(', ')} missing (has ${prefix.inputNames.join(', ')})`);
    if (layers === 0 || !prefix.outputNames.includes(N.logits)) problems.push(`${prefixFile}: outputs logits, present_key_i missing (has ${prefix.outputNames.join(', ')})`);
    const decIn = [N.inputIds, N.positionIds, ...Array.from({ length: layers }, (_, i) => [N.pastKey(i), N.pastValue(i)]).flat()];
    const missing = decIn.filter((n) => !decoder.inputNames.includes(n));
    if (missing.length > 0) problems.push(`${decoderFile}: inputs ${missing.join(', ')} missing for ${layers} layers (has ${decoder.inputNames.join(', ')})`);
    const pointerNames = [N.pointerEmbed, N.pointerKeys, N.pointerBias];
    const boxPointer = prefix.outputNames.includes(N.pointerEmbed);
    if (boxPointer && pointerNames.some((n) => !prefix.outputNames.includes(n) || !decoder.inputNames.includes(n))) {
      problems.push(`${prefixFile} / ${decoderFile}: a box-pointer explainer needs outputs / inputs ${pointerNames.join(', ')} in both graphs`);
    }
    if (problems.length > 0) {
      await prefix.release();
      await decoder.release();
      throw new DataError(problems.join('; '));
    }
    return new OnnxVlpRunner(prefix, decoder, layers, vocab, prefix.inputNames.includes(N.hoiSubjectBox), boxPointer);
  }

  /** Runs vlp_prefix: images [n, 3, S, S] (normalized like the extractor's input) + the slot/instruction arrays. */
  async prefix(images: Float32Array, a: ExplainerArrays): Promise<StepOutput> {
    const n = a.batch;
    const S = Math.round(Math.sqrt(images.length / (3 * n)));
    const M = a.hoiSubject.length / n, Li = a.instruction.length / n;
    const feeds: Record<string, ort.Tensor> = {
      [EXTRACTOR_INPUT_NAME]: new ort.Tensor('float32', images, [n, 3, S, S]),
      [N.hoiSubject]: int64(a.hoiSubject, [n, M]),
      [N.hoiVerb]: int64(a.hoiVerb, [n, M]),
      [N.hoiObject]: int64(a.hoiObject, [n, M]),
      [N.instruction]: int64(a.instruction, [n, Li]),
    };
    if (this.boxInputs) {
      feeds[N.hoiSubjectBox] = new ort.Tensor('float32', a.hoiSubjectBox, [n, M, 4]);
      feeds[N.hoiObjectBox] = new ort.Tensor('float32', a.hoiObjectBox, [n, M, 4]);
    }
    const out = await this.prefixSession.run(feeds);
    const pointer = this.boxPointer ? { embed: out[N.pointerEmbed], keys: out[N.pointerKeys], bias: out[N.pointerBias] } : null;
    return this.collect(out, pointer);
  }

  /** Runs vlp_decoder: one token per row at `position` over `past` (and the prefix's pointer memory, rows like `past`). */
  async step(tokens: readonly number[], position: number, past: PastKv, pointer: PointerFeeds | null = null): Promise<StepOutput> {
    const rows = tokens.length;
    const feeds: Record<string, ort.Tensor> = {
      [N.inputIds]: int64(tokens, [rows, 1]),
      [N.positionIds]: int64(new Array<number>(rows).fill(position), [rows, 1]),
    };
    past.forEach((kv, i) => {
      feeds[N.pastKey(i)] = kv.key;
      feeds[N.pastValue(i)] = kv.value;
    });
    if (this.boxPointer) {
      if (!pointer) throw new DataError('vlp_decoder: a box-pointer explainer step needs the pointer memory of the prefix graph');
      feeds[N.pointerEmbed] = pointer.embed;
      feeds[N.pointerKeys] = pointer.keys;
      feeds[N.pointerBias] = pointer.bias;
    }
    return this.collect(await this.decoderSession.run(feeds), pointer);
  }

  /**
   * Generation as models/vlp/generate.ts does it (same searcher, same positions): per image, the
   * tokens after <bos>, without <eos>.
   */
  async generate(images: Float32Array, a: ExplainerArrays, opts: GenerateOptions): Promise<number[][]> {
    const searcher = createSearcher(opts, a.batch, this.logitsWidth(a.hoiSubject.length / a.batch));
    const first = await this.prefix(images, a);
    const prefixLength = first.past[0].key.dims[2];
    let past = first.past;
    let pointer = first.pointer;
    let feed = searcher.rowBatch.map(() => opts.bosId);
    for (let position = prefixLength; ; position++) {
      const out = await this.step(feed, position, past, pointer);
      const next = searcher.advance(out.logits);
      if (next === null) break;
      const identity = next.parents.length === feed.length && next.parents.every((p, i) => p === i);
      past = identity ? out.past : out.past.map((kv) => ({ key: gatherRows(kv.key, next.parents), value: gatherRows(kv.value, next.parents) }));
      if (pointer && !identity) pointer = { embed: gatherRows(pointer.embed, next.parents), keys: gatherRows(pointer.keys, next.parents), bias: gatherRows(pointer.bias, next.parents) };
      feed = next.tokens;
    }
    return searcher.results();
  }

  /** Logits per row: the vocabulary, plus 2 pointer tokens per HOI slot for a box-pointer explainer. */
  logitsWidth(slots: number): number {
    return this.vocab + (this.boxPointer ? 2 * slots : 0);
  }

  async release(): Promise<void> {
    await this.prefixSession.release();
    await this.decoderSession.release();
  }

  private collect(out: ort.InferenceSession.OnnxValueMapType, pointer: PointerFeeds | null): StepOutput {
    const logits = out[N.logits];
    const width = this.vocab + (pointer ? pointer.bias.dims[1] : 0);
    if (!logits || logits.dims[logits.dims.length - 1] !== width) {
      throw new DataError(`explainer graph: logits [${logits?.dims ?? 'missing'}], expected [rows, ${width}] (the manifest's vocab_size${pointer ? ' + 2 x HOI slots' : ''})`);
    }
    const past: PastKv = [];
    for (let i = 0; i < this.layers; i++) past.push({ key: out[N.presentKey(i)], value: out[N.presentValue(i)] });
    return { logits: logits.data as Float32Array, past, pointer };
  }
}

/** The ONNX explanation engine of an export folder. */
export class OnnxExplanationEngine implements ExplanationEngine {
  readonly name = 'onnx' as const;

  private constructor(
    private readonly runner: OnnxVlpRunner,
    private readonly tokenizer: VlpTokenizer,
    private readonly e: ExplainerSection,
    private readonly labels: { categories: string[]; verbs: string[] },
  ) {}

  static async create(modelDir: string, manifest: ExportManifest, opts: { threads?: number } = {}): Promise<OnnxExplanationEngine> {
    const e = manifest.explainer!;
    const tokenizer = VlpTokenizer.fromFile(path.join(modelDir, manifest.tokenizer!));
    if (tokenizer.vocabSize > e.vocab_size) throw new DataError(`${path.join(modelDir, manifest.tokenizer!)}: vocabulary ${tokenizer.vocabSize} exceeds the explainer's ${e.vocab_size}`);
    const runner = await OnnxVlpRunner.create(
      path.join(modelDir, manifest.models.vlp_prefix?.file ?? VLP_PREFIX_ONNX_FILE),
      path.join(modelDir, manifest.models.vlp_decoder?.file ?? VLP_DECODER_ONNX_FILE),
      e.vocab_size, opts.threads ?? 2,
    );
    return new OnnxExplanationEngine(runner, tokenizer, e, { categories: manifest.categories, verbs: manifest.verbs });
  }

  async explain(x: ExplainerInput): Promise<string> {
    const slots = explainerSlots(x.triplets, x.original, this.e, this.labels);
    const a = explainerArrays([slots], this.e, this.labels);
    const [ids] = await this.runner.generate(x.input, a, explainerGenerateOptions(this.e));
    return explainerText(this.tokenizer, ids, this.e, slots);
  }

  async dispose(): Promise<void> {
    await this.runner.release();
  }
}
