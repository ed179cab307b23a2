/**
 * Tests of the BPE trainer (a hand-worked example) and of the tokenizer: fixed special ids, exact
 * decoding of every instruction and response of 200 synth records, compact boxes, determinism,
 * save/load through tokenizer.json, a GPT-2-style tokenizer.json, and the error paths.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildConversations } from '../../../src/data/instructions';
import type { HoiRecord } from '../../../src/data/record';
import { Rng } from '../../../src/data/rng';
import { parseSynthOptions } from '../../../src/data/synth';
import { layoutScene } from '../../../src/data/synth/scene';
import { Taxonomy } from '../../../src/data/taxonomy';
import { CheckpointError, ConfigError, DataError } from '../../../src/errors';
import { trainBpe } from '../../../src/models/vlp/bpe_trainer';
import { MIN_VOCAB_SIZE, SPECIAL_TOKENS, VlpTokenizer, byteLevelAlphabet, recordTexts, trainTokenizer } from '../../../src/models/vlp/tokenizer';
import { tmpDir } from '../../helpers/tmp';

/** 200 synth records' conversations, built as build-dataset builds them (layout only, no pixels). */
function synthRecords(n: number): Array<Pick<HoiRecord, 'conversations'>> {
  const taxonomy = Taxonomy.default();
  const opts = parseSynthOptions({ image_size: 128 });
  return Array.from({ length: n }, (_, i) => {
    const scene = layoutScene(7, i, opts);
    const category = new Map(scene.objects.map((o) => [o.id, o.category]));
    const hois = scene.hois.map((h) => ({ ...h, ...taxonomy.lookup(h.verb, category.get(h.object)!) }));
    const label = hois.some((h) => h.anomaly !== null) ? ('anomalous' as const) : ('normal' as const);
    const rec = { width: scene.width, height: scene.height, objects: scene.objects, hois, label };
    return { conversations: buildConversations(rec, taxonomy, new Rng(7, 'text', i)) };
  });
}

describe('BPE trainer', () => {
  // Sennrich et al.'s example. Pair counts: es 9, st 9, we 8, lo 7, ow 7, ne 6, ew 6, wi/id/de 3, er 2.
  // 1 (e,s) 9 ties (s,t) 9: left 'e' < 's'.   2 (es,t) 9.   3 (l,o) 7 ties (o,w) 7: 'l' < 'o'.
  // 4 (lo,w) 7.   5 at 6: (n,e) (e,w) (w,est): smallest left 'e' -> (e,w).   6 (ew,est) vs (n,ew),
  // both 6: 'ew' < 'n'.   7 (n,ewest).   8 at 3: (d,est) (i,d) (w,i) -> 'd'.   9 (i,dest).
  // 10 (w,idest).   11 at 2: (low,e) (e,r) -> 'e' < 'low'.   12 (low,er). Then every word is one symbol.
  const words = new Map([
    ['low', 5],
    ['lower', 2],
    ['newest', 6],
    ['widest', 3],
  ]);
  const alphabet = [...'delnorstwi'];
  const expected = [
    ['e', 's'], ['es', 't'], ['l', 'o'], ['lo', 'w'], ['e', 'w'], ['ew', 'est'],
    ['n', 'ewest'], ['d', 'est'], ['i', 'dest'], ['w', 'idest'], ['e', 'r'], ['low', 'er'],
  ];

  it('learns the hand-worked merges, ties by the smaller left then right symbol', () => {
    const r = trainBpe(words, { alphabet, maxMerges: 100 });
    assert.deepEqual(r.merges, expected);
    assert.equal(r.stoppedBy, 'min_frequency');
    assert.deepEqual(r.tokens.slice(alphabet.length), expected.map(([a, b]) => a + b));
  });

  it('stops at maxMerges or below minFrequency', () => {
    const r3 = trainBpe(words, { alphabet, maxMerges: 3 });
    assert.deepEqual(r3.merges, expected.slice(0, 3));
    assert.equal(r3.stoppedBy, 'max_merges');
    // counts 9 9 7 7 6 6 6, then 3 < 4
    assert.deepEqual(trainBpe(words, { alphabet, maxMerges: 100, minFrequency: 4 }).merges, expected.slice(0, 7));
    // minFrequency 3 drops only the two merges of count 2
    assert.deepEqual(trainBpe(words, { alphabet, maxMerges: 100, minFrequency: 3 }).merges, expected.slice(0, 10));
  });

  it('does not depend on the order of the words', () => {
    const reversed = new Map([...words.entries()].reverse());
    assert.deepEqual(trainBpe(reversed, { alphabet, maxMerges: 100 }), trainBpe(words, { alphabet, maxMerges: 100 }));
  });

  it('merges a repeated symbol left to right without overlap', () => {
    // 'aaaa' x1: (a,a) counted 3 times -> 'aa'; the word becomes aa aa -> (aa,aa) once, below min 2
    const r = trainBpe(new Map([['aaaa', 1]]), { alphabet: ['a'], maxMerges: 10 });
    assert.deepEqual(r.merges, [['a', 'a']]);
  });

  it('rejects a symbol outside the alphabet', () => {
    assert.throws(() => trainBpe(new Map([['abc', 1]]), { alphabet: ['a', 'b'], maxMerges: 1 }), (e: unknown) => e instanceof ConfigError && /"c" outside the alphabet/.test(e.message));
  });
});

describe('VlpTokenizer', () => {
  const records = synthRecords(200);
  const texts = records.flatMap((r) => {
    const { instruction, response } = recordTexts(r);
    return [instruction, response];
  });
  let tok: VlpTokenizer;
  before(() => {
    tok = trainTokenizer(texts, { vocabSize: 800 });
  });

  it('has the special tokens at fixed ids 0..5', () => {
    assert.deepEqual(SPECIAL_TOKENS, ['<pad>', '<bos>', '<eos>', '<unk>', '<image>', '<hoi>']);
    assert.deepEqual([tok.padId, tok.bosId, tok.eosId, tok.unkId, tok.imageId, tok.hoiId], [0, 1, 2, 3, 4, 5]);
    SPECIAL_TOKENS.forEach((t, i) => assert.equal(tok.tokenToId(t), i));
    assert.ok(tok.vocabSize > MIN_VOCAB_SIZE && tok.vocabSize <= 800, `vocabulary ${tok.vocabSize}`);
    // the byte symbols follow the specials in byte order
    assert.equal(tok.tokenToId('Ġ'), SPECIAL_TOKENS.length + 0x20);
    assert.equal(tok.tokenToId('0'), SPECIAL_TOKENS.length + 0x30);
  });

  it('decodes every instruction and response of 200 synth records exactly', () => {
    const t0 = Date.now();
    let tokens = 0;
    for (const text of texts) {
      const ids = tok.encode(text);
      tokens += ids.length;
      assert.ok(!ids.includes(tok.unkId), text);
      assert.equal(tok.decode(ids), text);
    }
    const seconds = (Date.now() - t0) / 1000;
    // measured about 160k tokens/s (encode + decode) on one core: a split takes about a second
    assert.ok(seconds < 10, `${tokens} tokens in ${seconds} s`);
    // and the words of the templates became whole tokens: far fewer tokens than characters
    const chars = texts.reduce((n, t) => n + t.length, 0);
    assert.ok(tokens < chars / 2.5, `${tokens} tokens for ${chars} characters`);
  });

  it('writes a box as 17 tokens, one per decimal digit', () => {
    const box = ' [0.418,0.125,0.895,0.984].';
    const pieces = tok.encode(box).map((id) => tok.idToToken(id));
    assert.deepEqual(pieces, ['Ġ[0.', '4', '1', '8', ',0.', '1', '2', '5', ',0.', '8', '9', '5', ',0.', '9', '8', '4', '].']);
    assert.equal(tok.decode(tok.encode(box)), box);
  });

  it('round-trips any text (byte level: spaces, newlines, non-Latin, emoji, digits)', () => {
    for (const s of ['héllo  wörld\n\ttab ✓ 🙂 日本', '  leading and trailing  ', '12345 0.5 .5 [1,2] (0.25)', 'a\r\nb', '<bos>x<eos>']) {
      assert.equal(tok.decode(tok.encode(s), { skipSpecial: false }), s);
    }
    assert.deepEqual(tok.encode(''), []);
    assert.equal(tok.decode([]), '');
  });

  it('encodes special tokens in the text to their ids and skips them when decoding by default', () => {
    const ids = tok.encode('<image>\nIs anything abnormal?');
    assert.equal(ids[0], 4);
    const withSpecials = [tok.bosId, ...ids, tok.eosId, tok.padId];
    assert.equal(tok.decode(withSpecials), '\nIs anything abnormal?');
    assert.equal(tok.decode(withSpecials, { skipSpecial: false }), '<bos><image>\nIs anything abnormal?<eos><pad>');
    assert.ok(tok.isSpecial(5) && !tok.isSpecial(6));
  });

  it('trains the same tokenizer from the same texts in any order', () => {
    const shuffled = [...texts].reverse();
    assert.deepEqual(trainTokenizer(shuffled, { vocabSize: 800 }).toJSON(), tok.toJSON());
  });

  it('saves an HF tokenizer.json and loads it back with the same encoding', () => {
    const dir = tmpDir();
    try {
      const file = path.join(dir, 'tokenizer.json');
      tok.save(file);
      const json = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert.equal(json.model.type, 'BPE');
      assert.equal(json.pre_tokenizer.type, 'Sequence');
      assert.equal(json.decoder.type, 'ByteLevel');
      assert.deepEqual(json.added_tokens.map((t: { id: number; content: string; special: boolean }) => [t.id, t.content, t.special]), SPECIAL_TOKENS.map((t, i) => [i, t, true]));
      assert.equal(Object.keys(json.model.vocab).length, tok.vocabSize);
      assert.equal(json.model.merges.length, tok.vocabSize - MIN_VOCAB_SIZE);
      const loaded = VlpTokenizer.fromFile(file);
      assert.equal(loaded.vocabSize, tok.vocabSize);
      for (const t of texts.slice(0, 20)) assert.deepEqual(loaded.encode(t), tok.encode(t));
      assert.deepEqual(fs.readdirSync(dir), ['tokenizer.json']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads a GPT-2-style byte-level tokenizer.json: <|endoftext|> is pad, bos and eos', () => {
    const alphabet = byteLevelAlphabet();
    const vocab: Record<string, number> = {};
    alphabet.forEach((c, i) => (vocab[c] = i));
    vocab['Ġt'] = 256;
    vocab['he'] = 257;
    vocab['Ġthe'] = 258;
    vocab['<|endoftext|>'] = 259;
    const gpt2 = {
      version: '1.0',
      added_tokens: [{ id: 259, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, vocab, merges: ['Ġ t', 'h e', 'Ġt he'] },
    };
    const g = VlpTokenizer.fromJSON(gpt2, 'gpt2 tokenizer.json');
    assert.deepEqual([g.padId, g.bosId, g.eosId, g.unkId, g.imageId, g.hoiId], [259, 259, 259, 259, -1, -1]);
    assert.equal(g.vocabSize, 260);
    const ids = g.encode('see the dog');
    assert.deepEqual(ids.slice(3, 4), [258]); // 's' 'e' 'e' then ' the'
    assert.equal(g.decode([...ids, 259]), 'see the dog');
    assert.equal(g.decode([...ids, 259], { skipSpecial: false }), 'see the dog<|endoftext|>');
  });

  it('reports bad input with the file or field', () => {
    assert.throws(() => trainTokenizer(['x'], { vocabSize: 100 }), (e: unknown) => e instanceof ConfigError && /vocabSize must be an integer >= 262/.test(e.message));
    assert.throws(() => tok.decode([1, 5000]), (e: unknown) => e instanceof DataError && /token id 5000 at position 1/.test(e.message));
    assert.throws(() => VlpTokenizer.fromFile('/nonexistent/tokenizer.json'), (e: unknown) => e instanceof CheckpointError && /nonexistent\/tokenizer.json: cannot read/.test(e.message));
    const dir = tmpDir();
    try {
      const file = path.join(dir, 'tokenizer.json');
      fs.writeFileSync(file, '{"model": ');
      assert.throws(() => VlpTokenizer.fromFile(file), (e: unknown) => e instanceof CheckpointError && e.message.startsWith(`${file}: tokenizer is not valid JSON`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.throws(() => VlpTokenizer.fromJSON({ added_tokens: [] }, 'x.json'), (e: unknown) => e instanceof CheckpointError && /x.json: field 'model' missing/.test(e.message));
    const noEos = { model: { type: 'BPE', vocab: { a: 0 }, merges: [] } };
    assert.throws(() => VlpTokenizer.fromJSON(noEos, 'y.json'), (e: unknown) => e instanceof CheckpointError && /y.json: no padding token/.test(e.message));
  });
});

describe('recordTexts', () => {
  it('splits a record into instruction (without <image>) and response', () => {
    const rec = {
      conversations: [
        { from: 'human' as const, value: '<image>\nIs anything abnormal in this image? Explain.' },
        { from: 'gpt' as const, value: 'No, this image looks normal. No interactions.' },
      ],
    };
    assert.deepEqual(recordTexts(rec), { instruction: 'Is anything abnormal in this image? Explain.', response: 'No, this image looks normal. No interactions.' });
  });

  it('refuses conversations without a gpt turn after the human turn', () => {
    assert.throws(() => recordTexts({ conversations: [{ from: 'gpt', value: 'x' }, { from: 'human', value: 'y' }] }), (e: unknown) => e instanceof DataError && /human turn followed by a gpt turn, found \[gpt, human\]/.test(e.message));
  });
});
