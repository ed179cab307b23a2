/**
 * BLEU, ROUGE-L and CIDEr-D on small cases computed by hand (the arithmetic is in the comments).
 */
import assert from 'node:assert/strict';
import { DataError } from '../../src/errors';
import { bleu, captionMetrics, ciderD, ciderDScores, lcsLength, rougeL, tokenizeForMetrics } from '../../src/eval/text_metrics';

const close = (actual: number, expected: number, tol = 1e-6, what = '') =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} != ${expected} (tol ${tol})`);

describe('text metrics', () => {
  describe('tokenizeForMetrics', () => {
    it('lowercases, keeps decimals and hyphenated words whole, drops punctuation', () => {
      assert.deepEqual(tokenizeForMetrics('Yes, the person at [0.031,0.217,0.625,1] (fight, medium severity).'), [
        'yes', 'the', 'person', 'at', '0.031', '0.217', '0.625', '1', 'fight', 'medium', 'severity',
      ]);
      assert.deepEqual(tokenizeForMetrics("Human-object interactions aren't normal!"), ['human-object', 'interactions', "aren't", 'normal']);
      assert.deepEqual(tokenizeForMetrics(' ... '), []);
    });
  });

  describe('BLEU', () => {
    it('is 1 for identical texts', () => {
      const s = bleu(['the cat sat on the mat today'], [['the cat sat on the mat today']]);
      for (const v of Object.values(s)) close(v, 1, 1e-8);
    });

    it('worked example: clipped n-gram precisions and their geometric means', () => {
      // cand: the cat sat on the mat (6)   ref: the cat is on the mat (6)
      // 1-grams: the x2 (ref has 2), cat, on, mat match, sat not: 5/6
      // 2-grams: the-cat, on-the, the-mat of 5: 3/5.  3-grams: on-the-mat of 4: 1/4.  4-grams: 0/3
      // equal lengths: no brevity penalty
      const s = bleu(['The cat sat on the mat.'], [['the cat is on the mat']]);
      close(s.bleu1, 5 / 6);
      close(s.bleu2, Math.sqrt((5 / 6) * (3 / 5))); // 0.70711
      close(s.bleu3, 0.5); // (5/6 * 3/5 * 1/4)^(1/3) = 0.125^(1/3)
      // coco's epsilons: (0 + 1e-15) / (3 + 1e-9) for the 4-grams -> tiny, not 0
      close(s.bleu4, (0.125 * (1e-15 / 3)) ** 0.25, 1e-9);
      assert.ok(s.bleu4 > 0 && s.bleu4 < 1e-4);
    });

    it('brevity penalty when the candidate is shorter than the reference', () => {
      // cand: the cat on the mat (5), ref (6): p1 = 5/5, p2 = 3/4 (the-cat, on-the, the-mat of 4)
      // BP = exp(1 - 6/5) = exp(-0.2) = 0.818731
      const s = bleu(['the cat on the mat'], [['the cat is on the mat']]);
      close(s.bleu1, Math.exp(-0.2));
      close(s.bleu2, Math.sqrt(0.75) * Math.exp(-0.2)); // 0.709042
    });

    it("takes the closest reference length, the shorter one on a tie", () => {
      // cand 4 words; refs of 3 and 5 words are both 1 away: r = 3 < c, no penalty; p1 = 4/4
      // (taking 5 would give exp(1 - 5/4) = 0.7788)
      close(bleu(['a b c d'], [['a b c', 'a b c d e']]).bleu1, 1);
      // refs of 2 and 6 words are both 2 away: r = 2, no penalty (6 would give exp(1 - 6/4))
      close(bleu(['a b c d'], [['a b', 'a b c d e f']]).bleu1, 1);
      // refs of 5 and 8: 5 is closest -> BP = exp(1 - 5/4)
      close(bleu(['a b c d'], [['a b c d e', 'a b c d e f g h']]).bleu1, Math.exp(-0.25));
    });

    it('is corpus level: counts and lengths summed before the ratio', () => {
      // the two cases above together: p1 = (5 + 5) / (6 + 5) = 10/11, c = 11, r = 12
      // BLEU-1 = 10/11 * exp(1 - 12/11) = 0.830855 (the mean of sentence scores would be 0.826)
      const s = bleu(['the cat sat on the mat', 'the cat on the mat'], [['the cat is on the mat'], ['the cat is on the mat']]);
      close(s.bleu1, (10 / 11) * Math.exp(1 - 12 / 11));
    });

    it('scores an empty candidate 0', () => {
      const s = bleu([''], [['the cat is on the mat']]);
      assert.deepEqual(Object.values(s), [0, 0, 0, 0]);
    });
  });

  describe('ROUGE-L', () => {
    it('LCS length', () => {
      assert.equal(lcsLength(['a', 'b', 'c', 'b', 'd', 'a', 'b'], ['b', 'd', 'c', 'a', 'b', 'a']), 4);
      assert.equal(lcsLength([], ['a']), 0);
    });

    it('is 1 for identical texts, 0 for an empty candidate', () => {
      close(rougeL(['The cat sat.'], [['the cat sat']]), 1, 1e-12);
      assert.equal(rougeL([''], [['the cat sat']]), 0);
    });

    it('worked example, averaged over candidates', () => {
      // 1: cand (6) vs ref (6): LCS the-cat-on-the-mat = 5, P = R = 5/6, F = 5/6
      // 2: cand "the cat" (2) vs ref (6): LCS 2, P = 1, R = 1/3
      //    F = (1 + 1.44) * 1 * (1/3) / (1/3 + 1.44 * 1) = 0.813333 / 1.773333 = 0.458647
      const f2 = (2.44 / 3) / (1 / 3 + 1.44);
      close(f2, 0.458647, 1e-6);
      const r = rougeL(['the cat sat on the mat', 'the cat'], [['the cat is on the mat'], ['the cat sat on the mat']]);
      close(r, (5 / 6 + f2) / 2);
    });

    it('takes the precision and recall maxima over references separately (coco)', () => {
      // ref "the cat": LCS 2, P = 2/6, R = 1.  ref of 9 words containing the candidate: P = 1, R = 6/9.
      // P_max = 1, R_max = 1 -> F = 1, although neither reference equals the candidate
      close(rougeL(['the cat sat on the mat'], [['the cat', 'the cat sat on the mat and slept well']]), 1, 1e-12);
    });
  });

  describe('CIDEr-D', () => {
    it('worked example: idf, cosine per order, mean over n = 1..4, x10', () => {
      // N = 2 items, ln N = ln 2. Item A: cand "a b", ref "a b". Item B: cand "c d", ref "c e".
      // Every n-gram has df <= 1, so each weight is tf * ln 2.
      // A: unigram and bigram vectors equal -> cos 1, 1; no 3-/4-grams -> 0; mean 0.5 -> 5
      // B: unigrams {c, d} vs {c, e}: (ln2)^2 / (sqrt2 ln2)^2 = 0.5; bigrams differ -> 0; mean 0.125 -> 1.25
      assert.deepEqual(ciderDScores(['a b', 'c d'], [['a b'], ['c e']]).map((v) => Math.round(v * 1e9) / 1e9), [5, 1.25]);
      close(ciderD(['a b', 'c d'], [['a b'], ['c e']]), 3.125, 1e-9);
    });

    it('an n-gram in every item\'s references weighs 0 (idf)', () => {
      // "the" has df 2 = N -> weight ln2 - ln2 = 0. A: cand "the a" vs ref "the b": only "the" shared -> 0.
      // B: cand = ref "the c": unigrams cos 1 ({c} only), bigram "the c" cos 1 -> mean 0.5 -> 5. CIDEr-D 2.5
      close(ciderD(['the a', 'the c'], [['the b'], ['the c']]), 2.5, 1e-9);
    });

    it('clips candidate weights by the reference and penalizes the length difference', () => {
      // A: cand "x x", ref "x". Unigram weights: cand 2 ln2, ref ln2.
      //    clipped: min(2ln2, ln2) * ln2 / (2ln2 * ln2) = 0.5 (1 without clipping)
      //    bigrams: cand has "x x", the ref none -> 0. Lengths (bigram counts) 1 vs 0: penalty exp(-1/72)
      //    score = 10 * (0.5 * exp(-1/72)) / 4 = 1.232759
      // B: cand = ref "y": unigram cos 1 -> 10 * 1/4 = 2.5
      const s = ciderDScores(['x x', 'y'], [['x'], ['y']]);
      close(s[0], (10 * 0.5 * Math.exp(-1 / 72)) / 4, 1e-9);
      close(s[0], 1.232759, 1e-6);
      close(s[1], 2.5, 1e-9);
    });

    it('divides the summed similarities by the number of references', () => {
      // A: cand "a b", refs "a b" (cos 1, 1) and "c d" (0, 0): sum [1, 1, 0, 0], mean 0.5, / 2 refs, x10 = 2.5
      const s = ciderDScores(['a b', 'e'], [['a b', 'c d'], ['e']]);
      close(s[0], 2.5, 1e-9);
    });

    it('is 0 with a single item (ln N = 0) and for an empty candidate', () => {
      assert.equal(ciderD(['a b c d e'], [['a b c d e']]), 0);
      assert.equal(ciderDScores(['', 'a b'], [['a b'], ['a b']])[0], 0);
    });
  });

  describe('captionMetrics', () => {
    it('returns every metric of the same inputs', () => {
      const cands = ['the cat sat on the mat', 'the cat'];
      const refs = [['the cat is on the mat'], ['the cat sat on the mat']];
      assert.deepEqual(captionMetrics(cands, refs), { ...bleu(cands, refs), rougeL: rougeL(cands, refs), ciderD: ciderD(cands, refs) });
    });

    it('refuses mismatched or empty inputs', () => {
      assert.throws(() => bleu(['a'], []), (e: unknown) => e instanceof DataError && /1 candidates but 0 reference lists/.test(e.message));
      assert.throws(() => rougeL([], []), (e: unknown) => e instanceof DataError && /no candidates/.test(e.message));
      assert.throws(() => ciderD(['a'], [[]]), (e: unknown) => e instanceof DataError && /candidate 0 has no reference/.test(e.message));
    });
  });
});
