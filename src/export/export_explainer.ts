/**
 * The explainer part of `export onnx` (DESIGN "Export"): a fine-tuned VLP run ->
 *
 *   vlp_prefix.onnx   input `image` [batch, 3, S, S] (the extractor's input, same normalization),
 *                     hoi_subject / hoi_verb / hoi_object int64 [batch, hois], hoi_subject_box /
 *                     hoi_object_box float32 [batch, hois, 4] (with box_encoding), instruction int64
 *                     [batch, instruction]; outputs logits [batch, V] and present_key_i /
 *                     present_value_i [batch, heads, P, head_dim];
 *   vlp_decoder.onnx  one token over the past k/v (models/vlp/explainer_onnx.ts);
 *   tokenizer.json    the run's tokenizer, byte for byte.
 *
 * Why the backbone is inside vlp_prefix.onnx rather than a `visual` output of extractor.onnx: the
 * explainer was trained on the C5 features of ITS extractor run (recorded in the VLP run), which
 * need not be the extractor being exported; one graph taking the image keeps the pairing right by
 * construction and makes the explainer one self-contained call. The cost is a second backbone pass
 * per explained image (the backbone is a fraction of the extractor's time; see `explain --timing`).
 * The graph is composed in one OnnxGraph: the backbone's C5 value is bound to the name the prefix
 * encoder declares as its `visual` input (BoundInputGraph), so no ONNX model surgery is needed.
 *
 * Parity, with the extractor's refusal rule (max abs diff <= tolerance, else ExportError and no
 * folder): on each sample batch (seeded noise at batch 2, real images) with seeded HOI slots and the
 * explain instruction, the prefix logits and every present k/v; then 5 decoder steps on the tokens
 * tfjs greedy picks (logits and presents per step); then a 5-step greedy decode through
 * onnxruntime with the explain engine's own driver must give tfjs `generate`'s tokens (a divergence
 * is only tolerated at a near tie: top-2 logit gap <= 2 x tolerance in tfjs).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../backend/tf';
import { INSTRUCTIONS } from '../data/instructions';
import { Rng } from '../data/rng';
import type { HoiSlot } from '../data/vlp_batches';
import { ExportError } from '../errors';
import { loadExtractor } from '../eval/extractor_eval';
import { type LoadedVlp, loadVlp, VLP_MODEL_NAME } from '../eval/vlp_eval';
import { writeFileAtomic } from '../fs_atomic';
import { sha256File } from '../infer/engines';
import { OnnxVlpRunner, type PastKv } from '../infer/explain_onnx';
import { type ExplainerArrays, explainerArrays, leftPadded } from '../infer/explainer_inputs';
import { disposeVlpInputs, explainerVisual, vlpInputsOf } from '../infer/explain_tfjs';
import {
  EXTRACTOR_INPUT_NAME, type ExplainerSection, type ExportedModel, type ParityRow, type TensorSpec, TOKENIZER_FILE,
  VLP_DECODER_ONNX_FILE, VLP_PREFIX_ONNX_FILE,
} from '../infer/manifest';
import { log } from '../logger';
import { PointHoiExtractor } from '../models/hoi/point_hoi';
import { disposePointerMemory, type PrefixState, type VlpExplainer } from '../models/vlp/explainer';
import { VLP_ONNX_NAMES as N } from '../models/vlp/explainer_onnx';
import { generate } from '../models/vlp/generate';
import { mergeAllLora } from '../models/vlp/lora';
import { argmax } from '../models/vlp/search';
import type { ValueInfoObj } from './onnx_proto';
import { maxAbsDiff } from './onnx_check';
import { DTYPE_TO_ONNX, type OnnxDType, type OnnxGraph as OnnxGraphType, OnnxGraph } from './onnx_graph';

/** Decoder steps compared in lockstep, and tokens of the greedy decode check. */
export const GREEDY_CHECK_STEPS = 5;

/** A named sample batch of extractor inputs, NCHW (export_models.ts makes them). */
export interface ExplainerSample {
  name: string;
  data: Float32Array;
  batch: number;
}

export interface ExplainerExportContext {
  outDir: string;
  tolerance: number;
  threads: number;
  samples: readonly ExplainerSample[];
  /** The exported extractor: the explainer must share its input size and labels. */
  extractor: { inputSize: number; categories: string[]; verbs: string[] };
  /** Test hook: called after the tfjs references, before the graphs are built (change a weight to prove a refusal). */
  afterReference?: (model: VlpExplainer) => void;
}

export interface ExplainerExportResult {
  models: { vlp_prefix: ExportedModel; vlp_decoder: ExportedModel };
  tokenizer: string;
  explainer: ExplainerSection;
}

/** An OnnxGraph where declaring a bound input name yields an existing value instead (graph composition). */
export class BoundInputGraph extends OnnxGraph {
  private readonly bound = new Map<string, string>();

  /** The next `input(name, ...)` returns `value` (declared nowhere as a graph input). */
  bind(name: string, value: string): void {
    this.bound.set(name, value);
  }

  override input(name: string, shape: Parameters<OnnxGraphType['input']>[1], dtype?: OnnxDType): string {
    const value = this.bound.get(name);
    if (value === undefined) return super.input(name, shape, dtype);
    this.bound.delete(name);
    return value;
  }

  /** Names bound but never asked for (a composition that did not happen). */
  unusedBindings(): string[] {
    return [...this.bound.keys()];
  }
}

const ONNX_TO_DTYPE = new Map(Object.entries(DTYPE_TO_ONNX).map(([k, v]) => [v, k]));

/** The declared inputs or outputs of a graph as manifest tensor specs. */
function specsOf(infos: readonly ValueInfoObj[] | undefined, layouts: Record<string, string> = {}): TensorSpec[] {
  return (infos ?? []).map((vi) => {
    const t = vi.type?.tensor_type;
    const spec: TensorSpec = {
      name: vi.name!,
      shape: (t?.shape?.dim ?? []).map((d) => (d.dim_param ? d.dim_param : Number(d.dim_value ?? 0))),
      dtype: ONNX_TO_DTYPE.get(t?.elem_type ?? 0) ?? 'unknown',
    };
    if (layouts[spec.name]) spec.layout = layouts[spec.name];
    return spec;
  });
}

/** Relative path from the export folder, posix separators. */
function relativeFrom(outDir: string, target: string): string {
  return path.relative(outDir, target).split(path.sep).join('/') || '.';
}

/** Seeded HOI slots for a parity batch: real-looking ids and boxes, row 0 with padding slots. */
function sampleSlots(batch: number, maxHois: number, numCategories: number, numVerbs: number, personCategory: number, seed: string): HoiSlot[][] {
  const rng = new Rng(0, 'export-vlp-slots', seed);
  const box = (): [number, number, number, number] => {
    const x1 = rng.uniform(0, 0.6), y1 = rng.uniform(0, 0.6);
    return [x1, y1, Math.min(1, x1 + rng.uniform(0.1, 0.4)), Math.min(1, y1 + rng.uniform(0.1, 0.4))];
  };
  return Array.from({ length: batch }, (_, b) => {
    const filled = b === 0 ? Math.max(1, maxHois - 1) : maxHois;
    return Array.from({ length: filled }, () => ({
      subject: personCategory, verb: rng.int(0, numVerbs - 1), object: rng.int(0, numCategories - 1), subjectBox: box(), objectBox: box(),
    }));
  });
}

/** tfjs outputs of one sample: prefix, then per lockstep step the tokens fed and what came out. */
type PointerField = 'embed' | 'keys' | 'bias';
/** The pointer memory's fields and the prefix graph outputs that carry them. */
const POINTER_OUTPUTS: ReadonlyArray<[PointerField, string]> = [['embed', N.pointerEmbed], ['keys', N.pointerKeys], ['bias', N.pointerBias]];

interface Reference {
  prefixLogits: Float32Array;
  prefixKv: Array<{ key: Float32Array; value: Float32Array }>;
  /** Box pointer: the prefix's pointer_embed / pointer_keys / pointer_bias; null without. */
  prefixPointer: Record<PointerField, Float32Array> | null;
  /** Tokens fed at step s (per row): <bos>, then tfjs's argmax of the previous step. */
  fed: number[][];
  stepLogits: Float32Array[];
  stepKv: Array<Array<{ key: Float32Array; value: Float32Array }>>;
  /** `generate` greedy, GREEDY_CHECK_STEPS tokens. */
  greedy: number[][];
}

function copyKv(model: VlpExplainer, caches: ReturnType<VlpExplainer['newCaches']>): Array<{ key: Float32Array; value: Float32Array }> {
  return caches.map((c, i) => {
    if (!c.k || !c.v) throw new ExportError(`explainer reference: layer ${i} holds no cache after ${model.constructor.name} ran`);
    return { key: Float32Array.from(c.k.dataSync() as Float32Array), value: Float32Array.from(c.v.dataSync() as Float32Array) };
  });
}

function readAndDispose(t: tf.Tensor): Float32Array {
  try {
    return Float32Array.from(t.dataSync() as Float32Array);
  } finally {
    t.dispose();
  }
}

/** The tfjs reference of one sample (see Reference). */
function tfjsReference(vlp: LoadedVlp, extractor: PointHoiExtractor, sample: ExplainerSample, arrays: ExplainerArrays, e: ExplainerSection): Reference {
  const model = vlp.model;
  const visual = explainerVisual(extractor, sample.data, sample.batch);
  const inputs = vlpInputsOf(visual, arrays);
  const caches = model.newCaches();
  const V = model.numLogits;
  let state: PrefixState | null = null;
  try {
    state = model.encodePrefix(inputs, caches);
    const prefixLogits = readAndDispose(state.logits);
    const p = state.pointer;
    const prefixPointer = p ? { embed: Float32Array.from(p.embed.dataSync()), keys: Float32Array.from(p.keys.dataSync()), bias: Float32Array.from(p.bias.dataSync()) } : null;
    const prefixKv = copyKv(model, caches);
    const ref: Reference = { prefixLogits, prefixKv, prefixPointer, fed: [], stepLogits: [], stepKv: [], greedy: [] };
    let feed = new Array<number>(sample.batch).fill(e.special_tokens.bos);
    for (let s = 0; s < GREEDY_CHECK_STEPS; s++) {
      const tokens = tf.tensor2d(feed, [sample.batch, 1], 'int32');
      const logits = readAndDispose(model.step(tokens, caches, e.prefix_length, state.pointer));
      tokens.dispose();
      ref.fed.push(feed);
      ref.stepLogits.push(logits);
      ref.stepKv.push(copyKv(model, caches));
      feed = Array.from({ length: sample.batch }, (_, b) => argmax(logits.subarray(b * V, (b + 1) * V)));
    }
    ref.greedy = generate(model, inputs, { strategy: 'greedy', maxLength: GREEDY_CHECK_STEPS, bosId: e.special_tokens.bos, eosId: e.special_tokens.eos });
    return ref;
  } finally {
    for (const c of caches) c.dispose();
    disposePointerMemory(state?.pointer ?? null);
    disposeVlpInputs(inputs);
    visual.dispose();
  }
}

/** Records a parity row; refuses the export beyond the tolerance. */
function compare(rows: ParityRow[], graph: string, what: { input: string; batch: number; output: string; at?: string }, got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number): void {
  const diff = maxAbsDiff(got, want);
  const existing = rows.find((r) => r.input === what.input && r.output === what.output);
  if (existing) existing.max_abs_diff = Math.max(existing.max_abs_diff, diff);
  else rows.push({ input: what.input, batch: what.batch, output: what.output, max_abs_diff: diff });
  if (!(diff <= tolerance)) {
    throw new ExportError(`${graph}: output '${what.output}'${what.at ? ` ${what.at}` : ''} on the ${what.input} input (batch ${what.batch}) differs from tfjs by ${diff.toExponential(2)} (max abs diff; tolerance ${tolerance.toExponential(0)}); export refused`);
  }
}

function comparePresents(rows: ParityRow[], graph: string, where: { input: string; batch: number; at?: string }, got: PastKv, want: Reference['prefixKv'], tolerance: number): void {
  want.forEach((kv, i) => {
    compare(rows, graph, { ...where, output: N.presentKey(i) }, got[i].key.data as Float32Array, kv.key, tolerance);
    compare(rows, graph, { ...where, output: N.presentValue(i) }, got[i].value.data as Float32Array, kv.value, tolerance);
  });
}

/**
 * The greedy tokens of both engines must agree; a divergence is tolerated only where tfjs's own
 * logits were a near tie (the engines may then pick either token). Throws ExportError otherwise.
 */
function checkGreedy(sample: ExplainerSample, ref: Reference, ort: number[][], vocab: number, eos: number, tolerance: number): void {
  ref.greedy.forEach((want, b) => {
    const got = ort[b];
    const n = Math.max(want.length, got.length);
    for (let s = 0; s < n; s++) {
      if (want[s] === got[s]) continue;
      // step s: the tokens fed up to s are common; tfjs's logits there are ref.stepLogits[s]
      const row = ref.stepLogits[s].subarray(b * vocab, (b + 1) * vocab);
      const sorted = Float32Array.from(row).sort().reverse();
      const gap = sorted[0] - sorted[1];
      const show = (t: number[]) => `[${t.join(',')}]${t.length < GREEDY_CHECK_STEPS ? ' <eos>' : ''}`;
      if (gap <= 2 * tolerance) {
        log.warn(`vlp_decoder.onnx: greedy tokens of row ${b} of the ${sample.name} input diverge at step ${s + 1} at a near tie (top-2 logit gap ${gap.toExponential(2)}): onnxruntime ${show(got)}, tfjs ${show(want)}`);
        return;
      }
      throw new ExportError(`vlp_decoder.onnx: greedy decode of row ${b} of the ${sample.name} input gives ${show(got)} in onnxruntime and ${show(want)} in tfjs (diverging at step ${s + 1}, top-2 logit gap ${gap.toExponential(2)}, eos ${eos}); export refused`);
    }
  });
}

/** The graph of vlp_prefix.onnx: extractor backbone (image -> C5) + the explainer prefix encoder. */
export function vlpPrefixGraph(model: VlpExplainer, extractor: PointHoiExtractor): OnnxGraph {
  const g = new BoundInputGraph('hoi2anomaly_vlp_prefix');
  const S = extractor.config.inputSize;
  const image = g.input(EXTRACTOR_INPUT_NAME, ['batch', 3, S, S]);
  const c5 = extractor.backbone.toOnnxFeatures(g, image).c5; // [batch, C5, S/32, S/32]
  g.bind(N.visual, c5);
  model.toOnnxPrefix(g);
  if (g.unusedBindings().length > 0) throw new ExportError(`vlp_prefix graph: the prefix encoder declared no '${N.visual}' input to bind the backbone's C5 to`);
  g.setMetadata('model_name', VLP_MODEL_NAME);
  g.setMetadata('model_config', JSON.stringify(model.config));
  g.setMetadata('visual_backbone', JSON.stringify(extractor.config));
  g.setMetadata('input_layout', 'NCHW');
  return g;
}

export function vlpDecoderGraph(model: VlpExplainer): OnnxGraph {
  const g = new OnnxGraph('hoi2anomaly_vlp_decoder');
  model.toOnnxDecoderStep(g);
  g.setMetadata('model_name', VLP_MODEL_NAME);
  g.setMetadata('model_config', JSON.stringify(model.config));
  return g;
}

/** Loads the explainer run and the extractor checkpoint whose backbone it was trained on; checks they fit the export. */
function loadSources(vlpRun: string, ctx: ExplainerExportContext): { vlp: LoadedVlp; extractor: PointHoiExtractor; extractorDir: string; extractorStep: number; merged: string[] } {
  if (!fs.existsSync(vlpRun)) throw new ExportError(`--vlp ${vlpRun}: run folder not found`);
  const vlp = loadVlp(vlpRun);
  try {
    const run = vlp.run;
    const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    if (!same(run.categories, ctx.extractor.categories) || !same(run.verbs, ctx.extractor.verbs)) {
      throw new ExportError(`--vlp ${vlpRun}: the explainer knows categories [${run.categories}] and verbs [${run.verbs}], the extractor exported [${ctx.extractor.categories}] and [${ctx.extractor.verbs}]`);
    }
    const merged = mergeAllLora(vlp.model);
    if (merged.length > 0) log.info(`explainer: ${merged.length} LoRA adapters merged into the exported weights`);
    const dir = run.extractor.checkpoint;
    if (!fs.existsSync(dir)) throw new ExportError(`--vlp ${vlpRun}: its extractor checkpoint ${dir} (the visual backbone) not found`);
    const ex = loadExtractor(dir);
    if (!(ex.model instanceof PointHoiExtractor) || ex.model.config.inputSize !== ctx.extractor.inputSize) {
      const size = ex.model instanceof PointHoiExtractor ? ex.model.config.inputSize : 'none';
      ex.model.dispose();
      throw new ExportError(`--vlp ${vlpRun}: its extractor ${dir} takes ${size} px inputs, the extractor exported ${ctx.extractor.inputSize} px (explain feeds both the same input)`);
    }
    return { vlp, extractor: ex.model, extractorDir: ex.dir, extractorStep: ex.step, merged };
  } catch (err) {
    vlp.model.dispose();
    throw err;
  }
}

/** Writes the explainer files into `staging` after the parity checks; returns the manifest entries. */
export async function exportExplainer(vlpRun: string, staging: string, ctx: ExplainerExportContext): Promise<ExplainerExportResult> {
  const { vlp, extractor, extractorDir, extractorStep, merged } = loadSources(vlpRun, ctx);
  const model = vlp.model;
  const c = model.config;
  const tok = vlp.tokenizer;
  try {
    const [hf, wf, cv] = vlp.run.extractor.visual_shape;
    const instruction = INSTRUCTIONS[0];
    const encoded = tok.encode(instruction);
    if (encoded.length > c.instruction_length) log.warn(`explainer: the instruction is ${encoded.length} tokens, the model reads ${c.instruction_length}: its first ${c.instruction_length} are kept`);
    const g = vlp.run.generate;
    const e: ExplainerSection = {
      instruction,
      instruction_ids: leftPadded(encoded, c.instruction_length, tok.padId),
      instruction_length: c.instruction_length,
      max_hois: c.max_hois,
      hoi_min_score: vlp.run.hoi_inputs.min_score,
      box_encoding: c.box_encoding,
      box_pointer: c.box_pointer,
      visual_shape: [hf, wf, cv],
      prefix_length: model.prefixLength(hf * wf),
      max_positions: c.max_positions,
      vocab_size: c.vocab_size,
      special_tokens: { pad: tok.padId, bos: tok.bosId, eos: tok.eosId },
      generate: { strategy: g.strategy, max_length: g.max_length, beam_size: g.beam_size, top_p: g.top_p, temperature: g.temperature, seed: g.seed },
      visual_backbone: { source_checkpoint: relativeFrom(ctx.outDir, extractorDir), source_sha256: sha256File(path.join(extractorDir, 'model.safetensors')), step: extractorStep },
      merged_lora: merged,
      greedy_check: { steps: GREEDY_CHECK_STEPS, tokens: [] },
    };
    const labels = { categories: vlp.run.categories, verbs: vlp.run.verbs };
    const person = Math.max(0, labels.categories.indexOf('person'));
    const arrays = ctx.samples.map((s) => explainerArrays(sampleSlots(s.batch, c.max_hois, c.num_categories, c.num_verbs, person, s.name), e, labels));
    const refs = ctx.samples.map((s, k) => tfjsReference(vlp, extractor, s, arrays[k], e));
    ctx.afterReference?.(model);

    const prefixGraph = vlpPrefixGraph(model, extractor);
    const decoderGraph = vlpDecoderGraph(model);
    const prefixFile = path.join(staging, VLP_PREFIX_ONNX_FILE);
    const decoderFile = path.join(staging, VLP_DECODER_ONNX_FILE);
    writeFileAtomic(prefixFile, prefixGraph.toModelProto());
    writeFileAtomic(decoderFile, decoderGraph.toModelProto());
    writeFileAtomic(path.join(staging, TOKENIZER_FILE), fs.readFileSync(path.join(path.dirname(vlp.dir), vlp.run.tokenizer_file)));

    let runner: OnnxVlpRunner;
    try {
      runner = await OnnxVlpRunner.create(prefixFile, decoderFile, c.vocab_size, ctx.threads);
    } catch (err) {
      throw new ExportError(`explainer graphs: onnxruntime-node cannot load them (${(err as Error).message})`, { cause: err });
    }
    const prefixRows: ParityRow[] = [];
    const decoderRows: ParityRow[] = [];
    try {
      for (const [k, sample] of ctx.samples.entries()) {
        const ref = refs[k];
        const where = { input: sample.name, batch: sample.batch };
        const first = await runner.prefix(sample.data, arrays[k]);
        compare(prefixRows, VLP_PREFIX_ONNX_FILE, { ...where, output: N.logits }, first.logits, ref.prefixLogits, ctx.tolerance);
        comparePresents(prefixRows, VLP_PREFIX_ONNX_FILE, where, first.past, ref.prefixKv, ctx.tolerance);
        if (ref.prefixPointer) {
          for (const [field, name] of POINTER_OUTPUTS) {
            const got = first.pointer?.[field];
            if (!got) throw new ExportError(`${VLP_PREFIX_ONNX_FILE}: output '${name}' missing`);
            compare(prefixRows, VLP_PREFIX_ONNX_FILE, { ...where, output: name }, got.data as Float32Array, ref.prefixPointer[field], ctx.tolerance);
          }
        }
        let past = first.past;
        for (let s = 0; s < GREEDY_CHECK_STEPS; s++) {
          const out = await runner.step(ref.fed[s], e.prefix_length + s, past, first.pointer);
          const at = `at step ${s + 1}`;
          compare(decoderRows, VLP_DECODER_ONNX_FILE, { ...where, output: N.logits, at }, out.logits, ref.stepLogits[s], ctx.tolerance);
          comparePresents(decoderRows, VLP_DECODER_ONNX_FILE, { ...where, at }, out.past, ref.stepKv[s], ctx.tolerance);
          past = out.past;
        }
        const ortTokens = await runner.generate(sample.data, arrays[k], { strategy: 'greedy', maxLength: GREEDY_CHECK_STEPS, bosId: tok.bosId, eosId: tok.eosId });
        checkGreedy(sample, ref, ortTokens, model.numLogits, tok.eosId, ctx.tolerance);
        e.greedy_check.tokens.push(...ortTokens);
      }
    } finally {
      await runner.release();
    }
    const entry = (file: string, graph: OnnxGraph, rows: ParityRow[], layouts: Record<string, string>): ExportedModel => {
      const obj = graph.toModelObject().graph!;
      return {
        file,
        model_name: VLP_MODEL_NAME,
        model_config: c,
        inputs: specsOf(obj.input, layouts),
        outputs: specsOf(obj.output),
        source_checkpoint: relativeFrom(ctx.outDir, vlp.dir),
        source_sha256: sha256File(path.join(vlp.dir, 'model.safetensors')),
        step: vlp.step,
        sha256: sha256File(path.join(staging, file)),
        max_abs_diff: Math.max(...rows.map((r) => r.max_abs_diff)),
        parity: rows,
      };
    };
    const models = {
      vlp_prefix: entry(VLP_PREFIX_ONNX_FILE, prefixGraph, prefixRows, { [EXTRACTOR_INPUT_NAME]: 'NCHW' }),
      vlp_decoder: entry(VLP_DECODER_ONNX_FILE, decoderGraph, decoderRows, {}),
    };
    for (const m of Object.values(models)) {
      log.info(`${m.file}: onnxruntime vs tfjs max abs diff ${m.max_abs_diff.toExponential(2)} over ${m.parity.length} outputs (tolerance ${ctx.tolerance.toExponential(0)})`);
    }
    log.info(`explainer: ${GREEDY_CHECK_STEPS}-step greedy decode identical in onnxruntime and tfjs on ${e.greedy_check.tokens.length} rows`);
    return { models, tokenizer: TOKENIZER_FILE, explainer: e };
  } finally {
    model.dispose();
    extractor.dispose();
  }
}
