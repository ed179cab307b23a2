/**
 * The explain pipeline on a tiny trained extractor exported to ONNX: both engines give the same
 * triplets; JPEG with EXIF rotation, grayscale, RGBA and 16-bit PNG accepted; a corrupt file
 * fails in one line while the folder goes on; annotated PNGs, results.json and index.html are
 * written; the CLI prints one JSON object per image.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { DataError } from '../../src/errors';
import { exportModels } from '../../src/export/export_models';
import { buildIndexHtml, htmlEscape } from '../../src/infer/html';
import { explainImages, expandInputs, type ExplainReport } from '../../src/infer/pipeline';
import { overlaySvg, wrapText, xmlEscape } from '../../src/infer/render';
import type { ImageResult } from '../../src/infer/types';
import { log } from '../../src/logger';
import { tinyExtractorRun, writeSampleImages, type SampleImages, type TinyRun } from './fixture';

const REPO = path.resolve(__dirname, '..', '..', '..');

/**
 * Same triplets: count, and each of `a` has an unused one in `b` with the same verb, object and
 * anomaly, boxes within 0.05 px and score within 1e-4 (order-free: near-equal scores may sort
 * either way); same anomaly score and verdict.
 */
function assertSameTriplets(a: ImageResult, b: ImageResult): void {
  const name = path.basename(a.file);
  assert.equal(a.num_triplets, b.num_triplets, `${name}: triplet count`);
  assert.equal(a.triplets.length, b.triplets.length);
  const unused = new Set(b.triplets);
  const close = (x: readonly number[], y: readonly number[], tol: number) => x.every((v, j) => Math.abs(v - y[j]) <= tol);
  a.triplets.forEach((t, i) => {
    const u = [...unused].find((c) => c.verb === t.verb && c.object === t.object && c.anomaly === t.anomaly && c.severity === t.severity
      && Math.abs(c.score - t.score) <= 1e-4 && close(c.subject_box, t.subject_box, 0.05) && close(c.object_box, t.object_box, 0.05));
    assert.ok(u, `${name} triplet ${i} (${t.verb} ${t.object} ${t.score} [${t.subject_box}] [${t.object_box}]) has no match in the other engine's`);
    unused.delete(u);
  });
  assert.ok(Math.abs(a.anomaly_score - b.anomaly_score) <= 1e-4);
  assert.equal(a.verdict, b.verdict);
}

describe('infer/pipeline (explain)', function () {
  this.timeout(120_000);
  let fx: TinyRun;
  let model: string;
  let images: SampleImages;
  let onnx: ExplainReport;
  let out: string;
  before(async () => {
    log.level = 'silent';
    fx = await tinyExtractorRun();
    model = path.join(fx.root, 'explain-export');
    await exportModels({ extractor: fx.run, out: model });
    images = await writeSampleImages(fx.data, path.join(fx.root, 'images'));
    out = path.join(fx.root, 'explain-onnx');
    onnx = await explainImages([images.folder], { model, engine: 'onnx', out });
  });
  after(() => {
    log.level = 'info';
  });

  it('takes image files from a folder, skips other files, reports missing paths', () => {
    const r = expandInputs([images.folder, path.join(fx.root, 'missing.png')]);
    assert.deepEqual(r.files.map((f) => path.basename(f.file)), ['a_plain.png', 'b_exif6.jpg', 'c_gray.png', 'd_rgba.png', 'e_rgb16.png', 'f_corrupt.png', 'g_x&y<z>.png']);
    assert.deepEqual(r.skipped.map((f) => path.basename(f)), ['notes.txt']);
    assert.deepEqual(r.missing, [path.join(fx.root, 'missing.png')]);
    assert.ok(r.anyFolder);
  });

  it('accepts EXIF-rotated JPEG, grayscale, RGBA and 16-bit PNG; a corrupt file fails in one line and the rest go on', () => {
    assert.deepEqual(onnx.results.map((r) => path.basename(r.file)), ['a_plain.png', 'b_exif6.jpg', 'c_gray.png', 'd_rgba.png', 'e_rgb16.png', 'g_x&y<z>.png']);
    assert.equal(onnx.failures.length, 1);
    assert.equal(onnx.failures[0].file, images.corrupt);
    assert.match(onnx.failures[0].error, /cannot decode image/);
    assert.ok(!onnx.failures[0].error.includes('\n'));
    const by = Object.fromEntries(onnx.results.map((r) => [path.basename(r.file), r]));
    // displayed sizes: the EXIF-rotated JPEG is stored 64x96 and shown 96x64
    assert.deepEqual([by['b_exif6.jpg'].width, by['b_exif6.jpg'].height], [96, 64]);
    assert.deepEqual([by['e_rgb16.png'].width, by['e_rgb16.png'].height], [64, 64]);
    for (const r of onnx.results) {
      assert.equal(r.verdict, r.anomaly_score >= r.threshold ? 'anomalous' : 'normal');
      assert.equal(r.threshold, 0.5);
      assert.equal(r.explanation, null);
      assert.ok(r.triplets.length <= 20 && r.num_triplets >= r.triplets.length);
      const top = Math.max(0, ...r.triplets.map((t) => t.anomaly_score));
      assert.ok(r.anomaly_score >= top - 1e-12, 'the score is the max over triplets');
      for (const t of r.triplets) {
        for (const b of [t.subject_box, t.object_box]) {
          assert.ok(b[0] >= 0 && b[1] >= 0 && b[2] <= r.width && b[3] <= r.height && b[0] <= b[2] && b[1] <= b[3], `${r.file}: box [${b}] inside ${r.width}x${r.height}`);
        }
        assert.equal(t.subject, 'person');
        assert.equal(t.anomaly === null, t.severity === null);
      }
      for (const k of ['preprocess', 'extractor', 'decode', 'total'] as const) assert.ok(r.timing_ms[k] > 0, `${k} timed`);
      assert.equal(r.timing_ms.explanation, 0);
    }
    // the grayscale, 16-bit and EXIF copies carry the same scene: the same image geometry
    assert.ok(onnx.results.every((r) => r.num_triplets > 0), 'the tiny model finds triplets on every image');
    assert.deepEqual(by['e_rgb16.png'].triplets.map((t) => t.verb), by['g_x&y<z>.png'].triplets.map((t) => t.verb), '16-bit = 8-bit pixels');
  });

  it('both engines give the same triplets on the same images', async () => {
    // every triplet, not the top 20: a near tie at the cut could otherwise swap one in or out
    const all = { model, out: null, maxTriplets: 1000 };
    const ort = await explainImages([images.folder], { ...all, engine: 'onnx' });
    const tfjs = await explainImages([images.folder], { ...all, engine: 'tfjs' });
    assert.equal(tfjs.results.length, 6);
    assert.equal(ort.results.length, 6);
    let compared = 0;
    tfjs.results.forEach((r, i) => {
      assertSameTriplets(ort.results[i], r);
      compared += r.triplets.length;
    });
    assert.ok(compared >= 6 * 20, `${compared} triplets compared`);
    assert.equal(tfjs.results[0].annotated, null);
  });

  it('the tfjs engine refuses a source checkpoint whose weights changed since export', async () => {
    const copy = path.join(fx.root, 'explain-export-copy');
    fs.cpSync(model, copy, { recursive: true });
    const m = JSON.parse(fs.readFileSync(path.join(copy, 'manifest.json'), 'utf8'));
    m.models.extractor.source_sha256 = '0'.repeat(64);
    fs.writeFileSync(path.join(copy, 'manifest.json'), JSON.stringify(m));
    await assert.rejects(explainImages([images.plain], { model: copy, engine: 'tfjs', out: null }), (e: Error) => e instanceof DataError && /sha256 mismatch/.test(e.message));
  });

  it('writes an annotated PNG per image, results.json and an index.html with relative links', async () => {
    for (const r of onnx.results) {
      assert.ok(r.annotated && r.annotated.startsWith(out) && r.annotated.endsWith('.annotated.png'));
      const meta = await sharp(r.annotated).metadata();
      assert.equal(meta.format, 'png');
      // scaled to a 480 px longer side, plus the banner and the explanation band
      assert.equal(meta.width, r.width >= r.height ? 480 : Math.round(r.width * (480 / r.height)));
      assert.ok(meta.height! > Math.round(r.height * (480 / Math.max(r.width, r.height))));
    }
    // the banner is drawn: the top-left pixel has the verdict colour
    const first = onnx.results[0];
    const { data } = await sharp(first.annotated!).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([...data.subarray(0, 3)], first.verdict === 'anomalous' ? [0xe0, 0x24, 0x5e] : [0x27, 0xae, 0x60]);

    const saved = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    assert.equal(saved.images.length, onnx.results.length);
    assert.equal(saved.failures.length, 1);
    const html = fs.readFileSync(onnx.html!, 'utf8');
    assert.equal(onnx.html, path.join(out, 'index.html'));
    assert.ok(html.includes('src="a_plain.annotated.png"'));
    assert.ok(html.includes('src="g_x%26y%3Cz%3E.annotated.png"'), 'links are percent-encoded');
    assert.ok(html.includes('g_x&amp;y&lt;z&gt;.png'), 'names are escaped');
    for (const m of html.matchAll(/(?:src|href)="([^"]*)"/g)) assert.ok(!m[1].startsWith('/') && !m[1].includes('..'), `relative link: ${m[1]}`);
    assert.ok(html.includes('f_corrupt.png'));
  });

  it('render and html escape text; long explanations wrap', () => {
    assert.equal(xmlEscape(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&apos;');
    assert.equal(htmlEscape('<script>'), '&lt;script&gt;');
    assert.deepEqual(wrapText('one two three four', 9), ['one two', 'three', 'four']);
    assert.deepEqual(wrapText('abcdefghij', 4), ['abcd', 'efgh', 'ij']);
    const r = { ...onnx.results[0], explanation: 'The person <script> & "friend" ' + 'word '.repeat(80) };
    const img = { data: new Uint8Array(r.width * r.height * 3), width: r.width, height: r.height };
    const { svg, layout } = overlaySvg(r, img);
    assert.ok(svg.includes('&lt;script&gt; &amp; &quot;friend&quot;'));
    assert.ok(!svg.includes('<script>'));
    assert.ok(layout.lines.length > 3);
    const page = buildIndexHtml('/x', [r], [{ file: '/x/<b>.png', error: 'bad & broken' }]);
    assert.ok(page.includes('The person &lt;script&gt; &amp; &quot;friend&quot;') && page.includes('bad &amp; broken'));
  });

  it('CLI: --json prints one object per image (and per failure), --timing the stages; a failed file exits 1', () => {
    const cliOut = path.join(fx.root, 'explain-cli');
    const res = spawnSync(process.execPath, [path.join(REPO, 'bin', 'hoi2anomaly.js'), 'explain', images.folder, images.notes, '--model', model, '--out', cliOut, '--json', '--timing'], { encoding: 'utf8', cwd: fx.root });
    assert.equal(res.status, 1, res.stderr);
    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const ok = lines.filter((l) => l.verdict !== undefined);
    const failed = lines.filter((l) => l.error !== undefined);
    assert.equal(ok.length, 6);
    assert.deepEqual(failed.map((f) => path.basename(f.file)).sort(), ['f_corrupt.png', 'notes.txt']);
    for (const l of ok) {
      assert.deepEqual(Object.keys(l).sort(), ['annotated', 'anomaly_score', 'explanation', 'file', 'height', 'num_triplets', 'threshold', 'timing_ms', 'triplets', 'verdict', 'width']);
      assert.deepEqual(Object.keys(l.timing_ms).sort(), ['decode', 'explanation', 'extractor', 'preprocess', 'render', 'total']);
      for (const t of l.triplets) assert.deepEqual(Object.keys(t).sort(), ['anomaly', 'anomaly_score', 'object', 'object_box', 'score', 'severity', 'subject', 'subject_box', 'verb']);
    }
    // the CLI's results equal the library's on the same engine
    ok.forEach((l, i) => assertSameTriplets(onnx.results[i], l));
    assert.match(res.stderr, /mean over 6 image\(s\): preprocess [\d.]+ ms \| extractor [\d.]+ ms \| decode [\d.]+ ms \| explanation [\d.]+ ms/);
    assert.match(res.stderr, /2 of 8 input\(s\) failed/);
    const errorLines = res.stderr.split('\n').filter((l) => l.startsWith('error: ') && l.includes('f_corrupt.png'));
    assert.equal(errorLines.length, 1);
    assert.ok(fs.existsSync(path.join(cliOut, 'index.html')));
  });
});
