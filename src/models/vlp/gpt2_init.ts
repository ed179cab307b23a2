/**
 * GPT-2-format initialisation of the explainer's decoder (`--init DIR`): reads a local Hugging
 * Face GPT-2 folder (config.json, model.safetensors, tokenizer.json), copies its tensors into a
 * model by parameter name, and prepares fine-tuning (GPT-2 part frozen, optional LoRA adapters).
 *
 * Name mapping: our decoder uses GPT-2's own names (`wte.weight`, `wpe.weight`,
 * `h.{i}.ln_1.*`, `h.{i}.attn.c_attn.*`, `h.{i}.attn.c_proj.*`, `h.{i}.ln_2.*`,
 * `h.{i}.mlp.c_fc.*`, `h.{i}.mlp.c_proj.*`, `ln_f.*`) and GPT-2's Conv1D stores weights
 * [in, out] like our Linear, so the mapping is the identity once the `transformer.` prefix that
 * GPT2LMHeadModel checkpoints carry is stripped. Ignored: the attention buffers
 * `h.{i}.attn.bias` / `h.{i}.attn.masked_bias` (the causal mask, which we compute), and
 * `lm_head.weight` when the model ties its head to `wte` (GPT-2 does). An untied `lm_head.weight`
 * of the model ([dim, vocab], our Linear layout) is filled with the checkpoint's lm_head (or wte)
 * transposed from PyTorch's [vocab, dim].
 *
 * Numerics: GPT-2 is a pre-LN decoder with gelu_new (the tanh GELU of nn/activation.ts),
 * LayerNorm eps 1e-5 and attention scaled by 1/sqrt(head_dim); configs that differ
 * (another activation, scale_attn_by_inverse_layer_idx, ...) are refused rather than loaded
 * into a model that would compute something else.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../../backend/tf';
import { Rng } from '../../data/rng';
import { CheckpointError, ConfigError } from '../../errors';
import { writeFileAtomic } from '../../fs_atomic';
import { Module, fmtShape } from '../nn/module';
import { HeaderEntry, SafetensorsEntry, readSafetensors, readSafetensorsHeader, writeSafetensors } from '../../train/safetensors';
import { enableLoraWhere, isLoraParameter } from './lora';
import { byteLevelAlphabet } from './tokenizer';

export interface Gpt2Config {
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nPositions: number;
  vocabSize: number;
  layerNormEpsilon: number;
  /** MLP hidden width; null means 4 * nEmbd. */
  nInner: number | null;
}

export const GPT2_CONFIG_FILE = 'config.json';
export const GPT2_WEIGHTS_FILE = 'model.safetensors';
export const GPT2_TOKENIZER_FILE = 'tokenizer.json';
/** The LayerNorm eps of our decoder (nn/norm.ts default) and of GPT-2. */
export const DECODER_LAYER_NORM_EPS = 1e-5;
/** The Linear layers of a block that LoRA can target, relative to `h.{i}`. */
export const LORA_TARGETS: readonly string[] = Object.freeze(['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']);

const GPT2_ACTIVATIONS = ['gelu_new', 'gelu_pytorch_tanh'];
const GPT2_PARAM = /^(wte|wpe|ln_f)\.|^h\.\d+\./;
const GPT2_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;
const HF_PREFIX = 'transformer.';
const LM_HEAD = 'lm_head.weight';
/** How many names an error lists before the count. */
const LIST_LIMIT = 10;

/** The three files of a GPT-2 folder; throws CheckpointError naming those that are absent. */
export function gpt2CheckpointFiles(dir: string): { config: string; weights: string; tokenizer: string } {
  const files = { config: path.join(dir, GPT2_CONFIG_FILE), weights: path.join(dir, GPT2_WEIGHTS_FILE), tokenizer: path.join(dir, GPT2_TOKENIZER_FILE) };
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new CheckpointError(`${dir}: GPT-2 checkpoint folder not found`);
  const absent = Object.values(files).filter((f) => !fs.existsSync(f)).map((f) => path.basename(f));
  if (absent.length > 0) {
    throw new CheckpointError(`${dir}: not a GPT-2 checkpoint folder: missing ${absent.join(', ')} (expected ${GPT2_CONFIG_FILE}, ${GPT2_WEIGHTS_FILE}, ${GPT2_TOKENIZER_FILE})`);
  }
  return files;
}

/** GPT-2 hyper-parameters from `dir/config.json`; errors name the file and the field. */
export function readGpt2Config(dir: string): Gpt2Config {
  const file = path.join(dir, GPT2_CONFIG_FILE);
  if (!fs.existsSync(file)) throw new CheckpointError(`${file}: file not found (a GPT-2 checkpoint folder holds ${GPT2_CONFIG_FILE}, ${GPT2_WEIGHTS_FILE}, ${GPT2_TOKENIZER_FILE})`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${file}: not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointError(`${file}: expected a JSON object`);
  const obj = raw as Record<string, unknown>;
  const fail = (field: string, expected: string): never => {
    throw new CheckpointError(`${file}: field '${field}': expected ${expected}, found ${obj[field] === undefined ? 'nothing' : JSON.stringify(obj[field])}`);
  };
  const posInt = (field: string): number => {
    const v = obj[field];
    return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : fail(field, 'an integer > 0');
  };
  if (obj.model_type !== undefined && obj.model_type !== 'gpt2') fail('model_type', "'gpt2'");
  if (obj.activation_function !== undefined && !GPT2_ACTIVATIONS.includes(obj.activation_function as string)) {
    fail('activation_function', `${GPT2_ACTIVATIONS.join(' or ')} (the tanh GELU our MLP computes)`);
  }
  if (obj.scale_attn_weights === false) fail('scale_attn_weights', 'true (attention scaled by 1/sqrt(head_dim))');
  if (obj.scale_attn_by_inverse_layer_idx === true) fail('scale_attn_by_inverse_layer_idx', 'false (our attention has no per-layer scaling)');
  if (obj.add_cross_attention === true) fail('add_cross_attention', 'false (a decoder-only checkpoint)');

  const nEmbd = posInt('n_embd');
  const nHead = posInt('n_head');
  if (nEmbd % nHead !== 0) throw new CheckpointError(`${file}: field 'n_embd' (${nEmbd}) is not divisible by field 'n_head' (${nHead})`);
  const nPositions = obj.n_positions === undefined && obj.n_ctx !== undefined ? posInt('n_ctx') : posInt('n_positions');
  const eps = obj.layer_norm_epsilon ?? DECODER_LAYER_NORM_EPS;
  const layerNormEpsilon = typeof eps === 'number' && eps > 0 ? eps : fail('layer_norm_epsilon', 'a number > 0');
  const nInner = obj.n_inner === undefined || obj.n_inner === null ? null : posInt('n_inner');
  return { nEmbd, nLayer: posInt('n_layer'), nHead, nPositions, vocabSize: posInt('vocab_size'), layerNormEpsilon, nInner };
}

/** The decoder's config keys this checkpoint dictates: { dim, layers, heads, max_positions, vocab_size, mlp_hidden }. */
export function vlpConfigFromGpt2(cfg: Gpt2Config): { dim: number; layers: number; heads: number; max_positions: number; vocab_size: number; mlp_hidden: number } {
  if (Math.abs(cfg.layerNormEpsilon - DECODER_LAYER_NORM_EPS) > 1e-12) {
    throw new CheckpointError(`GPT-2 config layer_norm_epsilon = ${cfg.layerNormEpsilon}: the decoder's LayerNorm uses ${DECODER_LAYER_NORM_EPS}`);
  }
  return {
    dim: cfg.nEmbd,
    layers: cfg.nLayer,
    heads: cfg.nHead,
    max_positions: cfg.nPositions,
    vocab_size: cfg.vocabSize,
    mlp_hidden: cfg.nInner ?? 4 * cfg.nEmbd,
  };
}

/** True for the model's parameters that come from GPT-2 (wte, wpe, h.*, ln_f), adapters excluded. */
export function isGpt2Parameter(name: string): boolean {
  return GPT2_PARAM.test(name) && !isLoraParameter(name);
}

/** Where each model tensor comes from: a checkpoint key, transposed or not. */
interface Source {
  key: string;
  transpose: boolean;
}

function listNames(xs: readonly string[]): string {
  return xs.slice(0, LIST_LIMIT).join(', ') + (xs.length > LIST_LIMIT ? `, ... (${xs.length} in all)` : '');
}

/**
 * Loads the checkpoint's tensors into `model` (any Module whose parameters use the names
 * wte.weight, wpe.weight, h.{i}.…, ln_f.…) by name mapping; checks every name and shape from the
 * header before reading any data or assigning anything; throws CheckpointError listing missing /
 * unexpected / mis-shaped names (first 10 + count). Returns what was loaded (model names), what of
 * the model the checkpoint does not cover (e.g. visual_proj.*, LoRA adapters), and the checkpoint
 * keys it ignored (attention mask buffers, a tied lm_head).
 */
export function loadGpt2Weights(model: Module, dir: string): { loaded: string[]; notInCheckpoint: string[]; ignored: string[] } {
  const file = path.join(dir, GPT2_WEIGHTS_FILE);
  const header = readSafetensorsHeader(file); // throws CheckpointError when absent or malformed
  const byName = new Map<string, [string, HeaderEntry]>(); // stripped name -> [file key, entry]
  for (const [key, e] of header.entries) {
    const name = key.startsWith(HF_PREFIX) ? key.slice(HF_PREFIX.length) : key;
    if (byName.has(name)) throw new CheckpointError(`${file}: tensor '${name}' appears both with and without the '${HF_PREFIX}' prefix`);
    byName.set(name, [key, e]);
  }

  const own = model.stateDict();
  const sources = new Map<string, Source>(); // model name -> source
  const missing: string[] = [];
  const mismatched: string[] = [];
  const notInCheckpoint: string[] = [];
  for (const [name, v] of own) {
    let source: Source | null = null;
    let expectedShape = v.shape;
    if (name === LM_HEAD) {
      // An untied head [dim, vocab]: the checkpoint's lm_head (or the tied wte) is [vocab, dim].
      const key = byName.has(LM_HEAD) ? LM_HEAD : 'wte.weight';
      if (byName.has(key)) source = { key, transpose: true };
      expectedShape = [...v.shape].reverse();
    } else if (isGpt2Parameter(name)) {
      if (byName.has(name)) source = { key: name, transpose: false };
      else missing.push(name);
    }
    if (!source) {
      if (!isGpt2Parameter(name)) notInCheckpoint.push(name);
      continue;
    }
    const [fileKey, e] = byName.get(source.key) as [string, HeaderEntry];
    const floating = e.dtype === 'F32' || e.dtype === 'F16' || e.dtype === 'BF16' || e.dtype === 'F64';
    const sameShape = e.shape.length === expectedShape.length && e.shape.every((d, i) => d === expectedShape[i]);
    if (!sameShape) {
      mismatched.push(`${name}: model ${fmtShape(v.shape)}${source.transpose ? ` (stored as ${fmtShape(expectedShape)})` : ''}, checkpoint '${fileKey}' ${fmtShape(e.shape)}`);
    } else if (!floating) {
      mismatched.push(`${name}: checkpoint '${fileKey}' has dtype ${e.dtype}, a floating-point tensor expected`);
    }
    sources.set(name, source);
  }

  const used = new Set([...sources.values()].map((s) => s.key));
  const ignored: string[] = [];
  const unexpected: string[] = [];
  for (const [name, [key]] of byName) {
    if (used.has(name)) continue;
    if (GPT2_BUFFER.test(name) || (name === LM_HEAD && !own.has(LM_HEAD))) ignored.push(key);
    else unexpected.push(key);
  }

  if (missing.length + unexpected.length + mismatched.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing from the checkpoint (${missing.length}): ${listNames(missing)}`);
    if (unexpected.length > 0) parts.push(`not in the model (${unexpected.length}): ${listNames(unexpected)}`);
    if (mismatched.length > 0) parts.push(`shape/dtype mismatches (${mismatched.length}): ${listNames(mismatched)}`);
    throw new CheckpointError(`${file}: does not fit ${model.constructor.name}: ${parts.join('; ')}`);
  }

  const { tensors } = readSafetensors(file);
  for (const [name, source] of sources) {
    const t = tensors.get(byName.get(source.key)?.[0] as string);
    if (!t) throw new CheckpointError(`${file}: tensor for '${name}' vanished between reading the header and the data`);
    const variable = own.get(name) as tf.Variable;
    tf.tidy(() => {
      const value = tf.tensor(t.data, t.shape, 'float32');
      variable.assign(source.transpose ? tf.transpose(value) : value);
    });
  }
  return { loaded: [...sources.keys()], notInCheckpoint, ignored };
}

/**
 * Freezes the GPT-2 part (wte, wpe, h.*, ln_f) and, when rank > 0, enables LoRA on every
 * attn.c_attn / attn.c_proj / mlp.c_fc / mlp.c_proj Linear of h.* (or the `targets` given, names
 * relative to a block). Everything else (projections into the decoder, an untied lm_head) keeps
 * its flag. Returns the names of the parameters left trainable.
 */
export function prepareGpt2Finetune(
  model: Module,
  lora: { rank: number; alpha?: number; dropout?: number; targets?: string[]; seed?: number },
): { trainable: string[] } {
  const { rank } = lora;
  if (!Number.isInteger(rank) || rank < 0) throw new ConfigError(`lora.rank: expected an integer >= 0 (0: no adapters), got ${rank}`);
  const targets = lora.targets ?? [...LORA_TARGETS];
  const unknown = targets.filter((t) => !LORA_TARGETS.includes(t));
  if (unknown.length > 0) throw new ConfigError(`lora.targets: unknown ${unknown.map((t) => `'${t}'`).join(', ')} (known: ${LORA_TARGETS.join(', ')})`);
  if (targets.length === 0) throw new ConfigError(`lora.targets: empty (known: ${LORA_TARGETS.join(', ')})`);

  const gpt2 = [...model.namedParameters()].filter(([name]) => isGpt2Parameter(name));
  if (gpt2.length === 0) throw new ConfigError(`${model.constructor.name} has no GPT-2 parameters (wte, wpe, h.*, ln_f) to fine-tune`);
  for (const [, v] of gpt2) v.trainable = false;
  if (rank > 0) {
    const pattern = new RegExp(`^h\\.\\d+\\.(${targets.map((t) => t.replace('.', '\\.')).join('|')})$`);
    enableLoraWhere(model, (p) => pattern.test(p), { rank, alpha: lora.alpha, dropout: lora.dropout, seed: lora.seed });
  }
  return { trainable: [...model.namedParameters()].filter(([, v]) => v.trainable).map(([name]) => name) };
}

// ---------------------------------------------------------------------------------------------
// a tiny random checkpoint, for tests

/** Merges of the tiny tokenizer, in rank order (their results join the vocabulary after the bytes). */
const TINY_MERGES: ReadonlyArray<[string, string]> = [['Ġ', 't'], ['h', 'e'], ['Ġt', 'he'], ['i', 'n'], ['o', 'n'], ['Ġ', 'a']];
const END_OF_TEXT = '<|endoftext|>';

/** A byte-level BPE tokenizer.json (GPT-2 layout): 256 byte symbols, TINY_MERGES, <|endoftext|>. */
export function tinyGpt2TokenizerJson(): object {
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((s, i) => { vocab[s] = i; });
  for (const [a, b] of TINY_MERGES) vocab[a + b] = Object.keys(vocab).length;
  const eot = Object.keys(vocab).length;
  vocab[END_OF_TEXT] = eot;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eot, content: END_OF_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: TINY_MERGES.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/**
 * Writes a tiny random GPT-2-format checkpoint folder (config.json, model.safetensors with HF
 * names and the `transformer.` prefix plus the attention buffers, tokenizer.json): used by tests
 * and by the CLI test. Values are seeded: projections N(0, 0.2^2), LayerNorm gains 1 + N(0, 0.1^2),
 * biases N(0, 0.1^2), embeddings N(0, 0.5^2), large enough that every part of the forward matters.
 */
export function writeTinyGpt2Checkpoint(dir: string, opts: { nEmbd: number; nLayer: number; nHead: number; nPositions: number; seed?: number }): void {
  const { nEmbd: c, nLayer, nHead, nPositions } = opts;
  for (const [k, v] of Object.entries({ nEmbd: c, nLayer, nHead, nPositions })) {
    if (!Number.isInteger(v) || v < 1) throw new ConfigError(`writeTinyGpt2Checkpoint: ${k} must be an integer >= 1, got ${v}`);
  }
  if (c % nHead !== 0) throw new ConfigError(`writeTinyGpt2Checkpoint: nEmbd ${c} is not divisible by nHead ${nHead}`);
  const seed = opts.seed ?? 0;
  const tokenizer = tinyGpt2TokenizerJson() as { model: { vocab: Record<string, number> } };
  const vocabSize = Object.keys(tokenizer.model.vocab).length;

  const tensors = new Map<string, SafetensorsEntry>();
  const add = (name: string, shape: number[], std: number, mean = 0): void => {
    const rng = new Rng(seed, 'tiny-gpt2', name);
    const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal(mean, std));
    tensors.set(HF_PREFIX + name, { dtype: 'F32', shape, data });
  };
  const mask = new Float32Array(nPositions * nPositions);
  for (let i = 0; i < nPositions; i++) for (let j = 0; j <= i; j++) mask[i * nPositions + j] = 1;
  add('wte.weight', [vocabSize, c], 0.5);
  add('wpe.weight', [nPositions, c], 0.5);
  for (let i = 0; i < nLayer; i++) {
    const h = `h.${i}`;
    add(`${h}.ln_1.weight`, [c], 0.1, 1);
    add(`${h}.ln_1.bias`, [c], 0.1);
    tensors.set(`${HF_PREFIX}${h}.attn.bias`, { dtype: 'F32', shape: [1, 1, nPositions, nPositions], data: mask });
    tensors.set(`${HF_PREFIX}${h}.attn.masked_bias`, { dtype: 'F32', shape: [], data: Float32Array.of(-1e4) });
    add(`${h}.attn.c_attn.weight`, [c, 3 * c], 0.2);
    add(`${h}.attn.c_attn.bias`, [3 * c], 0.1);
    add(`${h}.attn.c_proj.weight`, [c, c], 0.2);
    add(`${h}.attn.c_proj.bias`, [c], 0.1);
    add(`${h}.ln_2.weight`, [c], 0.1, 1);
    add(`${h}.ln_2.bias`, [c], 0.1);
    add(`${h}.mlp.c_fc.weight`, [c, 4 * c], 0.2);
    add(`${h}.mlp.c_fc.bias`, [4 * c], 0.1);
    add(`${h}.mlp.c_proj.weight`, [4 * c, c], 0.2);
    add(`${h}.mlp.c_proj.bias`, [c], 0.1);
  }
  add('ln_f.weight', [c], 0.1, 1);
  add('ln_f.bias', [c], 0.1);

  const eot = tokenizer.model.vocab[END_OF_TEXT] ?? vocabSize - 1;
  const config = {
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], activation_function: 'gelu_new',
    n_embd: c, n_layer: nLayer, n_head: nHead, n_positions: nPositions, n_ctx: nPositions, n_inner: null,
    vocab_size: vocabSize, layer_norm_epsilon: DECODER_LAYER_NORM_EPS, initializer_range: 0.02,
    attn_pdrop: 0.1, embd_pdrop: 0.1, resid_pdrop: 0.1, scale_attn_weights: true, tie_word_embeddings: true,
    bos_token_id: eot, eos_token_id: eot,
  };
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, GPT2_CONFIG_FILE), JSON.stringify(config, null, 2));
  writeFileAtomic(path.join(dir, GPT2_TOKENIZER_FILE), JSON.stringify(tokenizer));
  writeSafetensors(path.join(dir, GPT2_WEIGHTS_FILE), tensors, { format: 'pt' });
}
