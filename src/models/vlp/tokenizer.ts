/**
 * The explainer's tokenizer: a byte-level BPE stored as a Hugging Face `tokenizer.json`, trained
 * on the dataset's instructions and responses by our own trainer (./bpe_trainer.ts: the native
 * `tokenizers` npm package is broken as published), and run through `@huggingface/tokenizers`
 * (pure JS) for encoding and decoding. The same class also wraps a GPT-2 `tokenizer.json` when
 * the explainer is fine-tuned from a local GPT-2-format checkpoint.
 *
 * Layout of our tokenizer.json (loadable by the Rust/Python `tokenizers` as well):
 *   - added tokens, all special, fixed ids: <pad>=0 <bos>=1 <eos>=2 <unk>=3 <image>=4 <hoi>=5;
 *     the text `<image>` in an input encodes to id 4;
 *   - no normalizer (decoding reproduces the input exactly);
 *   - pre-tokenizer: Split(PRE_TOKENIZER_PATTERN, Isolated) then ByteLevel (no regex, no prefix
 *     space): every byte is representable, so no input ever maps to <unk>;
 *   - model: BPE, vocabulary = specials, the 256 byte symbols, then merges in rank order;
 *   - decoder: ByteLevel; no post-processor (callers add <bos>/<eos> themselves).
 *
 * Numbers: each digit is its own pre-token, except that the first digit of a decimal number is
 * kept with its point and the `[`, `(` or `,` before it (` [0.`, `,0.`, `,1.`). A box
 * ` [0.418,0.125,0.895,0.984].` (27 characters) is then 17 tokens (` [0.` 4 1 8 `,0.` 1 2 5
 * ... `].`), while the model still writes each coordinate digit by digit: the decimals carry
 * the position and are the same ten tokens everywhere, which a small decoder learns far more
 * easily than hundreds of merged number tokens. Letters group into words with their
 * leading space (GPT-2 style); punctuation runs (`).`, `].`) stay apart from words and digits.
 */
import * as fs from 'node:fs';
import { CheckpointError, ConfigError, DataError } from '../../errors';
import { writeFileAtomic } from '../../fs_atomic';
import { log } from '../../logger';
import type { HoiRecord } from '../../data/record';
import { trainBpe } from './bpe_trainer';

export const SPECIAL_TOKENS: readonly string[] = Object.freeze(['<pad>', '<bos>', '<eos>', '<unk>', '<image>', '<hoi>']);

/**
 * Split pattern of the pre-tokenizer (Oniguruma syntax, as tokenizer.json stores it; the JS
 * library translates it). Alternatives, tried left to right at each position:
 *   ` ?\p{L}+`                       a word with its leading space
 *   ` ?[\[(,]?\p{N}\.(?=\p{N})`      first digit of a decimal with its point and opening `[`/`(`/`,`
 *   `\p{N}`                          any other digit, alone
 *   ` ?[^\s\p{L}\p{N}]+`             a punctuation run with its leading space
 *   `\s+(?!\S)|\s+`                  whitespace (GPT-2: a run before a word leaves its last space to the word)
 */
export const PRE_TOKENIZER_PATTERN = String.raw` ?\p{L}+| ?[\[(,]?\p{N}\.(?=\p{N})|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

/** Smallest vocabulary of a trained tokenizer: the special tokens and the 256 byte symbols. */
export const MIN_VOCAB_SIZE = SPECIAL_TOKENS.length + 256;

/**
 * The part of `@huggingface/tokenizers` (v0.2) we use, typed here: the package's own .d.ts files
 * are ESM with extensionless relative imports, which CommonJS resolution only partly follows.
 */
interface HfTokenizer {
  encode(text: string, opts: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], opts: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
}
interface HfModule {
  Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => HfTokenizer;
  SequencePreTokenizer: new (config: object) => { pre_tokenize_text(text: string): string[] };
}
let hfModule: HfModule | undefined;

/**
 * `@huggingface/tokenizers` is ESM-first; its package also ships a CommonJS build that the
 * `node.require` export condition selects, so a plain require works from our CommonJS output
 * (synchronously, unlike import()). Loaded on first use.
 */
function hf(): HfModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  hfModule ??= require('@huggingface/tokenizers') as HfModule;
  return hfModule;
}

/** The parts of tokenizer.json this module reads or writes (the rest passes through untouched). */
interface TokenizerJson {
  version?: string;
  added_tokens?: Array<{ id: number; content: string; special?: boolean; [k: string]: unknown }>;
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: { type?: string; vocab?: Record<string, number>; unk_token?: string | null; [k: string]: unknown };
  [k: string]: unknown;
}

export class VlpTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  /** Id of `<image>`, or -1 when the tokenizer has none (GPT-2). */
  readonly imageId: number;
  /** Id of `<hoi>`, or -1 when the tokenizer has none (GPT-2). */
  readonly hoiId: number;
  /** Where the tokenizer came from, for messages (a file path, or `trained`). */
  readonly source: string;

  private readonly json: TokenizerJson;
  private readonly impl: HfTokenizer;
  private readonly specialIds: ReadonlySet<number>;

  private constructor(json: TokenizerJson, source: string) {
    this.json = json;
    this.source = source;
    try {
      // clean_up_tokenization_spaces would rewrite " ." to "." and break exact decoding
      this.impl = new (hf().Tokenizer)(json, { clean_up_tokenization_spaces: false });
    } catch (e) {
      throw new CheckpointError(`${source}: @huggingface/tokenizers cannot load this tokenizer.json: ${(e as Error).message}`, { cause: e });
    }
    const vocab = this.impl.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    const id = (candidates: readonly (string | null | undefined)[]): number => {
      for (const c of candidates) if (typeof c === 'string' && vocab.has(c)) return vocab.get(c)!;
      return -1;
    };
    const need = (role: string, candidates: readonly (string | null | undefined)[]): number => {
      const found = id(candidates);
      if (found < 0) throw new CheckpointError(`${source}: no ${role} token (expected one of ${candidates.filter((c) => typeof c === 'string').join(', ')} in the vocabulary or added_tokens)`);
      return found;
    };
    const gpt2 = '<|endoftext|>';
    this.padId = need('padding', ['<pad>', gpt2]);
    this.bosId = need('begin-of-sequence', ['<bos>', gpt2]);
    this.eosId = need('end-of-sequence', ['<eos>', gpt2]);
    this.unkId = need('unknown', ['<unk>', json.model.unk_token, gpt2]);
    this.imageId = id(['<image>']);
    this.hoiId = id(['<hoi>']);
    this.specialIds = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
  }

  /** Reads a tokenizer.json: ours, or a GPT-2 byte-level one. */
  static fromFile(file: string): VlpTokenizer {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new CheckpointError(`${file}: cannot read tokenizer: ${(e as Error).message}`, { cause: e });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new CheckpointError(`${file}: tokenizer is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    return VlpTokenizer.fromJSON(json, file);
  }

  /** A parsed tokenizer.json; `source` names it in error messages. */
  static fromJSON(json: unknown, source = 'tokenizer JSON'): VlpTokenizer {
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new CheckpointError(`${source}: expected a tokenizer.json object, found ${Array.isArray(json) ? 'an array' : typeof json}`);
    const obj = json as Record<string, unknown>;
    const model = obj.model as Record<string, unknown> | undefined;
    if (model === null || typeof model !== 'object') throw new CheckpointError(`${source}: field 'model' missing (expected the tokenizer model object)`);
    if (model.vocab === null || typeof model.vocab !== 'object') throw new CheckpointError(`${source}: field 'model.vocab' missing (expected a token -> id object)`);
    if (obj.added_tokens !== undefined && !Array.isArray(obj.added_tokens)) throw new CheckpointError(`${source}: field 'added_tokens' must be an array`);
    // deep copy: the caller may mutate its object afterwards; fields the library needs default to null
    const copy = JSON.parse(JSON.stringify(json)) as TokenizerJson;
    copy.added_tokens ??= [];
    for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder'] as const) copy[k] ??= null;
    return new VlpTokenizer(copy, source);
  }

  /** The tokenizer.json object (a copy). */
  toJSON(): object {
    return JSON.parse(JSON.stringify(this.json)) as object;
  }

  /** Writes tokenizer.json atomically. */
  save(file: string): void {
    writeFileAtomic(file, JSON.stringify(this.json));
  }

  /** Token ids of `text`; no special tokens are added (a literal `<image>` in the text is id 4). */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.impl.encode(text, { add_special_tokens: false }).ids;
  }

  /** Text of `ids`; special tokens are dropped unless `skipSpecial` is false. Ids must be in the vocabulary. */
  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    const skip = opts.skipSpecial ?? true;
    const kept: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new DataError(`${this.source}: cannot decode token id ${id} at position ${i} (vocabulary size ${this.vocabSize})`);
      if (!(skip && this.specialIds.has(id))) kept.push(id);
    }
    if (kept.length === 0) return ''; // the library refuses an empty list
    return this.impl.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** Id of a token string (as stored, byte-level symbols included), or -1. */
  tokenToId(token: string): number {
    return this.impl.token_to_id(token) ?? -1;
  }

  /** Token string of an id (byte-level symbols, e.g. `Ġperson`), or undefined. */
  idToToken(id: number): string | undefined {
    return this.impl.id_to_token(id);
  }

  /** True for the ids of added special tokens (<pad>, <bos>, ... or GPT-2's <|endoftext|>). */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }
}

/**
 * Trains a byte-level BPE tokenizer on `texts` (instructions and responses). Special tokens
 * inside a text are cut out before counting. `vocabSize` counts the specials and the 256 byte
 * symbols; training stops earlier when no pair occurs `minFrequency` (default 2) times.
 */
export function trainTokenizer(texts: Iterable<string>, opts: { vocabSize: number; minFrequency?: number }): VlpTokenizer {
  const { vocabSize } = opts;
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE) {
    throw new ConfigError(`tokenizer: vocabSize must be an integer >= ${MIN_VOCAB_SIZE} (${SPECIAL_TOKENS.length} special tokens + 256 byte symbols), found ${vocabSize}`);
  }
  const preTokenizer = new (hf().SequencePreTokenizer)(preTokenizerConfig());
  const specials = new RegExp(SPECIAL_TOKENS.map(escapeRegex).join('|'), 'g');
  const words = new Map<string, number>();
  let nTexts = 0;
  for (const text of texts) {
    nTexts++;
    for (const piece of text.split(specials)) {
      if (piece.length === 0) continue;
      for (const w of preTokenizer.pre_tokenize_text(piece)) words.set(w, (words.get(w) ?? 0) + 1);
    }
  }
  const alphabet = byteLevelAlphabet();
  const { merges, tokens, stoppedBy } = trainBpe(words, { alphabet, maxMerges: vocabSize - MIN_VOCAB_SIZE, minFrequency: opts.minFrequency });
  log.debug(`tokenizer: ${nTexts} texts, ${words.size} distinct pre-tokens, ${merges.length} merges (stopped by ${stoppedBy}), vocabulary ${SPECIAL_TOKENS.length + tokens.length}`);

  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((t, i) => (vocab[t] = i));
  for (const t of tokens) {
    // cannot happen: specials mix letters and punctuation, which never share a pre-token
    if (Object.prototype.hasOwnProperty.call(vocab, t)) throw new ConfigError(`tokenizer: learned token ${JSON.stringify(t)} collides with a special token`);
    vocab[t] = Object.keys(vocab).length;
  }
  const json: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: preTokenizerConfig(),
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      // "left right" strings: byte-level symbols never hold a space, and every tokenizers
      // version (the Python one before 0.20 included) reads this form
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  return VlpTokenizer.fromJSON(json, 'trained tokenizer');
}

/** The instruction (human turn without the leading '<image>\n') and response (gpt turn) of a record. */
export function recordTexts(rec: Pick<HoiRecord, 'conversations'>): { instruction: string; response: string } {
  const turns = rec.conversations;
  if (!Array.isArray(turns)) throw new DataError(`record field 'conversations': expected an array of turns, found ${typeof turns}`);
  const h = turns.findIndex((t) => t.from === 'human');
  const g = turns.findIndex((t, i) => i > h && t.from === 'gpt');
  if (h < 0 || g < 0) {
    throw new DataError(`record field 'conversations': expected a human turn followed by a gpt turn, found [${turns.map((t) => t.from).join(', ')}]`);
  }
  const instruction = turns[h].value.replace(/^<image>\n?/, '').replace(/\n?<image>$/, '');
  return { instruction, response: turns[g].value };
}

/** The pre-tokenizer section of tokenizer.json (see PRE_TOKENIZER_PATTERN). */
function preTokenizerConfig(): object {
  return {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: PRE_TOKENIZER_PATTERN }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}

/**
 * The 256 byte-level symbols in byte order (GPT-2's bytes_to_unicode): printable Latin-1 bytes
 * map to themselves, the others to U+0100 onwards (space -> `Ġ`, newline -> `Ċ`).
 */
export function byteLevelAlphabet(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let shifted = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(printable(b) ? b : 256 + shifted++));
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
