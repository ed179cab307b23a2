/**
 * Training-step benchmark: where tfjs on CPU stands against PyTorch, and where its time goes.
 * `bash bench/train_step.sh` runs the PyTorch reference first and then this file with `--torch`,
 * which prints one table with ratios. Alone:
 *
 *   node dist/bench/train_step_bench.js [--sizes 128,224] [--batch 8] [--threads 2]
 *     [--steps 3] [--warmup 1] [--forward-runs 5] [--cpu-steps 1] [--cpu-sizes 128] [--cpu-batch 1]
 *     [--only train,forward,extractor,profile,cpu] [--backends wasm,wasm-native]
 *     [--torch torch.json] [--json out.json]
 *
 * Sections (batch 8, wasm with 2 threads unless told otherwise), each run on every --backends
 * entry: 'wasm' (XNNPACK and our composites) and 'wasm-native' (the same backend with the heavy
 * kernels in ONNX Runtime, src/backend/native); the table adds the ratio wasm / wasm-native:
 *   train      ResNet-18 (full width, 1000-class fc), softmax cross-entropy on random labels,
 *              one step = forward + backward (tf.variableGrads) + AdamW + reading the loss;
 *              median ms of --steps steps after --warmup steps, at each --sizes
 *   cpu        the same step on @tensorflow/tfjs-backend-cpu, --cpu-steps cold steps at
 *              --cpu-sizes with batch --cpu-batch (default 1: one batch-8 step at 128 px takes
 *              10-20 minutes on this backend; 0 steps skips it). Its ratio to PyTorch is per
 *              image, against PyTorch's batch-B step (marked *)
 *   forward    the same network in eval mode, batch 1 and batch B, median of --forward-runs
 *   extractor  one real training step of the tiny HOI extractor (configs/extractor/tiny.yaml's
 *              model at the quickstart's 128 px: ResNet-18 x0.25, neck/head 32) on synthetic records,
 *              as train_extractor's trainStep does it: targets, losses, gradients, clipping, AdamW
 *   profile    tf.profile() of one ResNet-18 training step at the first size: kernel time
 *              aggregated by kernel name, top 10 with their share of the step's wall time (wasm
 *              and native kernels run synchronously, so each kernel's wall time is its cost);
 *              one profile per backend: before (wasm) and after (wasm-native); with the
 *              extractor section, the same for one tiny-extractor step
 *
 * The load average is printed next to every row: on a shared 2-core machine it is the first
 * thing to check when numbers look off.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { initBackend, nativeKernelStats, seedEverything, type BackendInfo } from '../src/backend';
import { tf } from '../src/backend/tf';
import { ExtractorConfigSchema, type ExtractorConfig } from '../src/config/extractor';
import type { HoiRecord } from '../src/data/record';
import { Rng } from '../src/data/rng';
import { SYNTH_CATEGORIES, SYNTH_VERBS } from '../src/data/synth';
import { log } from '../src/logger';
import { createBackbone } from '../src/models/backbones/registry';
import { computeLosses } from '../src/models/hoi/losses';
import { POINT_HOI_STRIDE, PointHoiExtractor } from '../src/models/hoi/point_hoi';
import { buildTargets, disposeTargetTensors, targetsToTensors } from '../src/models/hoi/targets';
import { applyGradients, trainableParams } from '../src/train/loop_common';
import { AdamW } from '../src/train/optim';

type Section = 'train' | 'cpu' | 'forward' | 'extractor' | 'profile';
const SECTIONS: readonly Section[] = ['train', 'cpu', 'forward', 'extractor', 'profile'];

type BenchBackend = 'wasm' | 'wasm-native';
const BENCH_BACKENDS: readonly BenchBackend[] = ['wasm', 'wasm-native'];

interface Options {
  backends: BenchBackend[];
  sizes: number[];
  batch: number;
  threads: number;
  steps: number;
  warmup: number;
  forwardRuns: number;
  cpuSteps: number;
  cpuSizes: number[];
  cpuBatch: number;
  only: Set<Section>;
  torch: string | null;
  json: string | null;
}

/** One measured configuration; ms are per step (train) or per forward call. */
interface Row {
  kind: 'train' | 'forward' | 'extractor';
  backend: string;
  model: string;
  size: number;
  batch: number;
  ms: number[];
  medianMs: number;
  /** 1-minute load average when the row finished. */
  load: number;
  note?: string;
}

interface TorchResult {
  kind: 'train' | 'forward';
  size: number;
  batch: number;
  ms: number[];
  median_ms: number;
}

interface TorchFile {
  meta: { torch: string; threads: number; model: string; config_blas?: string[]; blas_libraries?: string[]; loadavg_start?: number[]; loadavg_end?: number[] };
  results: TorchResult[];
}

interface KernelStat {
  name: string;
  ms: number;
  calls: number;
}

interface Profile {
  backend: string;
  model: string;
  size: number;
  batch: number;
  wallMs: number;
  kernelMs: number;
  kernels: KernelStat[];
  /** Custom-gradient ops: not kernels; their time includes the kernels they run. */
  scopes: KernelStat[];
  /** The slowest single calls, by name and input shapes. */
  topCalls: Array<{ name: string; shapes: string; ms: number }>;
}

function parseArgs(argv: string[]): Options {
  const get = (flag: string): string | undefined => {
    const i = argv.lastIndexOf(flag); // the last occurrence wins (train_step.sh appends overrides)
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
    return v;
  };
  const int = (flag: string, dflt: number, min = 0): number => {
    const v = get(flag);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: an integer >= ${min} expected, got '${v}'`);
    return n;
  };
  const sizes = (flag: string, dflt: number[]): number[] => {
    const v = get(flag);
    if (v === undefined) return dflt;
    const out = v.split(',').filter((s) => s !== '').map(Number);
    if (out.some((s) => !Number.isInteger(s) || s < 32 || s % 32 !== 0)) throw new Error(`${flag}: sizes divisible by 32 expected, got '${v}'`);
    return out;
  };
  const known = new Set(['--sizes', '--batch', '--threads', '--steps', '--warmup', '--forward-runs', '--cpu-steps', '--cpu-sizes', '--cpu-batch', '--only', '--backends', '--torch', '--json']);
  for (let i = 0; i < argv.length; i += 2) {
    if (!known.has(argv[i])) throw new Error(`unknown argument '${argv[i]}'; known: ${[...known].join(' ')}`);
  }
  const only = get('--only');
  const picked = only === undefined ? [...SECTIONS] : only.split(',').filter((s) => s !== '');
  for (const s of picked) if (!SECTIONS.includes(s as Section)) throw new Error(`--only: unknown section '${s}'; sections: ${SECTIONS.join(', ')}`);
  const backends = (get('--backends') ?? BENCH_BACKENDS.join(',')).split(',').filter((s) => s !== '');
  for (const b of backends) if (!BENCH_BACKENDS.includes(b as BenchBackend)) throw new Error(`--backends: unknown backend '${b}'; known: ${BENCH_BACKENDS.join(', ')}`);
  return {
    backends: backends as BenchBackend[],
    sizes: sizes('--sizes', [128, 224]),
    batch: int('--batch', 8, 1),
    threads: int('--threads', 2, 1),
    steps: int('--steps', 3, 1),
    warmup: int('--warmup', 1, 0),
    forwardRuns: int('--forward-runs', 5, 1),
    cpuSteps: int('--cpu-steps', 1, 0),
    cpuSizes: sizes('--cpu-sizes', [128]),
    cpuBatch: int('--cpu-batch', 1, 1),
    only: new Set(picked as Section[]),
    torch: get('--torch') ?? null,
    json: get('--json') ?? null,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function load1(): number {
  return os.loadavg()[0];
}

/** Runs `fn` warmup times, then times `runs` calls (ms each). */
function timeRuns(fn: () => void, warmup: number, runs: number): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** A model, its AdamW, and a step over one fixed batch; every tensor of a step is freed by it. */
interface Trainer {
  step(): number;
  dispose(): void;
}

/** Weight decay on rank >= 2 parameters only, as `train extractor` and the PyTorch reference. */
function makeAdamW(params: Map<string, tf.Variable>, lr: number, weightDecay: number): AdamW {
  return new AdamW(params, { lr, weightDecay, noDecay: (name) => params.get(name)!.rank < 2 });
}

/** ResNet-18 classifier step: softmax cross-entropy on random labels, backward, AdamW. */
function resnetTrainer(size: number, batch: number): Trainer {
  const model = createBackbone('resnet18', { width: 1, seed: 0, numClasses: 1000 });
  model.train();
  const { params, nameOf, vars } = trainableParams(model);
  const optimizer = makeAdamW(params, 1e-3, 1e-4);
  const rng = new Rng(0, 'train_step_bench', size);
  const x = tf.tidy(() => tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 1)) as tf.Tensor4D;
  const labels = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from({ length: batch }, () => rng.int(0, 999)), 'int32'), 1000).toFloat());
  return {
    step(): number {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.forward(x)) as tf.Scalar, vars);
      const loss = value.dataSync()[0];
      value.dispose();
      const named = new Map<string, tf.Tensor>();
      for (const [varName, g] of Object.entries(grads)) named.set(nameOf.get(varName)!, g);
      optimizer.step(named);
      for (const g of named.values()) g.dispose();
      return loss;
    },
    dispose(): void {
      x.dispose();
      labels.dispose();
      optimizer.dispose();
      model.dispose();
    },
  };
}

/**
 * Synthetic records at the model input size: in each image 2-4 people and 1-3 things of the
 * synth categories, and 1-3 HOIs between a person and another object.
 */
function syntheticRecords(n: number, size: number, seed: number): HoiRecord[] {
  const rng = new Rng(seed, 'train_step_bench.records');
  const box = (): [number, number, number, number] => {
    const w = rng.uniform(0.1, 0.4) * size, h = rng.uniform(0.1, 0.6) * size;
    const x1 = rng.uniform(0, size - w), y1 = rng.uniform(0, size - h);
    return [x1, y1, x1 + w, y1 + h];
  };
  const things = SYNTH_CATEGORIES.filter((c) => c !== 'person');
  return Array.from({ length: n }, (_, i) => {
    const people = rng.int(2, 4), others = rng.int(1, 3);
    const objects = [
      ...Array.from({ length: people }, () => ({ category: 'person', box: box() })),
      ...Array.from({ length: others }, () => ({ category: rng.pick(things), box: box() })),
    ].map((o, id) => ({ id, ...o }));
    const hois = Array.from({ length: rng.int(1, 3) }, () => {
      const subject = rng.int(0, people - 1);
      let object = rng.int(0, objects.length - 1);
      if (object === subject) object = people + rng.int(0, others - 1);
      return { subject, object, verb: rng.pick(SYNTH_VERBS), anomaly: null, severity: null };
    });
    return {
      id: `bench-${i}`, image: `images/bench-${i}.png`, width: size, height: size,
      objects, hois, label: 'normal' as const, conversations: [],
    };
  });
}

/** configs/extractor/tiny.yaml's model (at 128 px, as the quickstart and the README table) and optimizer settings (everything else: the defaults). */
function tinyExtractorConfig(batch: number): ExtractorConfig {
  return ExtractorConfigSchema.parse({
    model: { backbone: 'resnet18', width: 0.25, input_size: 128, neck_channels: 32, head_channels: 32 },
    train: { batch_size: batch, schedule: { lr: 0.003, warmup_steps: 30, min_lr: 0.00003 } },
  });
}

/**
 * One `train extractor` step as train_extractor.ts's trainStep does it: targets from the batch's
 * records, forward, the six losses, gradients, clipping by global norm, AdamW. Only the image
 * decoding and augmentation of the data loader are left out (a fixed random batch).
 */
function extractorTrainer(batch: number): Trainer {
  const cfg = tinyExtractorConfig(batch);
  const S = cfg.model.input_size;
  const categories = [...SYNTH_CATEGORIES];
  const verbs = [...SYNTH_VERBS];
  const model = new PointHoiExtractor({
    backbone: cfg.model.backbone, width: cfg.model.width, inputSize: S, numCategories: categories.length, numVerbs: verbs.length,
    neckChannels: cfg.model.neck_channels, headChannels: cfg.model.head_channels, seed: cfg.train.seed,
  });
  model.train();
  const trainable = trainableParams(model);
  const { params, vars } = trainable;
  const optimizer = makeAdamW(params, cfg.train.schedule.lr, cfg.train.weight_decay);
  const records = syntheticRecords(batch, S, 0);
  const images = tf.tidy(() => tf.randomNormal([batch, S, S, 3], 0, 1, 'float32', 2)) as tf.Tensor4D;
  return {
    step(): number {
      const targets = targetsToTensors(buildTargets(records, {
        inputSize: S, stride: POINT_HOI_STRIDE, categories, verbs,
        maxObjects: cfg.targets.max_objects, maxInteractions: cfg.targets.max_interactions,
      }));
      let value: tf.Scalar;
      let grads: tf.NamedTensorMap;
      try {
        ({ value, grads } = tf.variableGrads(() => computeLosses(model.forward(images), targets, cfg.loss).total, vars));
      } finally {
        disposeTargetTensors(targets);
      }
      const loss = value.dataSync()[0];
      value.dispose();
      applyGradients(optimizer, trainable, grads, loss, cfg.train.grad_clip, cfg.train.schedule.lr);
      return loss;
    },
    dispose(): void {
      images.dispose();
      optimizer.dispose();
      model.dispose();
    },
  };
}

/** Times a trainer's steps; checks that the loss is finite and that no tensor leaks. */
function measureTrainer(make: () => Trainer, warmup: number, steps: number): { ms: number[]; loss: number } {
  const trainer = make();
  try {
    let loss = NaN;
    for (let i = 0; i < warmup; i++) loss = trainer.step();
    const before = tf.memory().numTensors;
    const ms = timeRuns(() => (loss = trainer.step()), 0, steps);
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) log.warn(`${leaked} tensors leaked over ${steps} steps`);
    if (!Number.isFinite(loss)) throw new Error(`loss is ${loss}`);
    return { ms, loss };
  } finally {
    trainer.dispose();
  }
}

async function profileStep(backend: string, model: string, make: () => Trainer, size: number, batch: number, warmup: number): Promise<Profile> {
  const trainer = make();
  try {
    for (let i = 0; i < Math.max(1, warmup); i++) trainer.step();
    const t0 = performance.now();
    let wallMs = 0;
    const info = await tf.profile(() => {
      trainer.step();
      wallMs = performance.now() - t0;
    });
    const byName = new Map<string, KernelStat>();
    const scopes = new Map<string, KernelStat>();
    const calls: Profile['topCalls'] = [];
    let kernelMs = 0;
    for (const k of info.kernels) {
      const ms = Number(k.kernelTimeMs);
      // tf.profile also lists custom-gradient ops (named by their enclosing scope), whose time
      // includes the kernels they run: kept apart so that no time is counted twice.
      const registered = tf.getKernel(k.name, tf.getBackend()) !== undefined;
      const table = registered ? byName : scopes;
      const s = table.get(k.name) ?? { name: k.name, ms: 0, calls: 0 };
      s.ms += ms;
      s.calls++;
      table.set(k.name, s);
      if (!registered) continue;
      kernelMs += ms;
      calls.push({ name: k.name, shapes: k.inputShapes.map((sh) => (sh ? `[${sh.join(',')}]` : '-')).join(' '), ms });
    }
    calls.sort((a, b) => b.ms - a.ms);
    return {
      backend, model, size, batch, wallMs, kernelMs,
      kernels: [...byName.values()].sort((a, b) => b.ms - a.ms),
      scopes: [...scopes.values()].sort((a, b) => b.ms - a.ms),
      topCalls: calls.slice(0, 8),
    };
  } finally {
    trainer.dispose();
  }
}

function forwardRows(sizes: number[], batches: number[], runs: number, backend: string): Row[] {
  const rows: Row[] = [];
  const model = createBackbone('resnet18', { width: 1, seed: 0, numClasses: 1000 });
  model.eval();
  try {
    for (const size of sizes) {
      for (const batch of batches) {
        const x = tf.tidy(() => tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 3)) as tf.Tensor4D;
        const ms = timeRuns(() => {
          const y = model.forward(x);
          y.dataSync();
          y.dispose();
        }, 2, runs);
        x.dispose();
        rows.push({ kind: 'forward', backend, model: 'resnet18', size, batch, ms, medianMs: median(ms), load: load1() });
        progressLine(rows[rows.length - 1]);
      }
    }
  } finally {
    model.dispose();
  }
  return rows;
}

function progressLine(r: Row): void {
  const runs = r.ms.map((m) => m.toFixed(0)).join(', ');
  console.error(`  ${r.kind} ${r.backend} ${r.model} ${r.size} px batch ${r.batch}: ${r.medianMs.toFixed(1)} ms (runs ${runs}; load ${r.load.toFixed(2)})`);
}

/** images/s: 1 decimal from 10, 2 from 1, else 2 significant digits (tfjs-cpu: 0.0073). */
function fmtRate(v: number): string {
  return v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(2);
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function printTable(rows: Row[], torch: TorchFile | null, threads: number): void {
  const torchMs = (kind: string, size: number, batch: number): number | undefined =>
    torch?.results.find((t) => t.kind === kind && t.size === size && t.batch === batch)?.median_ms;
  const all: Array<Row & { ratio?: number; perImage?: boolean }> = [];
  const torchName = torch ? `pytorch-cpu ${torch.meta.torch} (${torch.meta.threads}t)` : '';
  const keys = new Set<string>();
  for (const r of rows) {
    const key = `${r.kind}/${r.size}/${r.batch}`;
    const ref = torchMs(r.kind, r.size, r.batch);
    if (torch && ref !== undefined && !keys.has(key)) {
      keys.add(key);
      const t = torch.results.find((x) => x.kind === r.kind && x.size === r.size && x.batch === r.batch)!;
      all.push({ kind: r.kind, backend: torchName, model: r.model, size: r.size, batch: r.batch, ms: t.ms, medianMs: t.median_ms, load: NaN, ratio: 1 });
    }
    if (ref !== undefined) {
      all.push({ ...r, ratio: r.medianMs / ref });
    } else {
      // No PyTorch run at this batch (tfjs-cpu runs batch 1): compare time per image with
      // PyTorch's training step at the same size.
      const t = r.kind === 'train' ? torch?.results.find((x) => x.kind === 'train' && x.size === r.size) : undefined;
      all.push({ ...r, ratio: t ? r.medianMs / r.batch / (t.median_ms / t.batch) : undefined, perImage: t !== undefined });
    }
  }
  const header = ['what', 'backend', 'model', 'size', 'batch', 'ms (median)', 'images/s', 'x PyTorch time', 'runs', 'load 1m'];
  const table = all.map((r) => [
    r.kind === 'train' ? 'train step' : r.kind === 'forward' ? 'forward (eval)' : 'extractor step',
    r.backend,
    r.model,
    `${r.size}`,
    `${r.batch}`,
    r.medianMs >= 100 ? r.medianMs.toFixed(0) : r.medianMs.toFixed(1),
    fmtRate((1000 * r.batch) / r.medianMs),
    r.ratio === undefined ? '-' : r.ratio === 1 && r.backend === torchName ? '1' : `${r.perImage ? '*' : ''}${r.ratio.toFixed(1)}x`,
    `${r.ms.length}${r.note ? ` (${r.note})` : ''}`,
    Number.isFinite(r.load) ? r.load.toFixed(2) : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const numeric = new Set([3, 4, 5, 6, 7]);
  const line = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i], numeric.has(i))).join('  ');
  console.log(`\nTraining step and forward latency, ResNet-18 (1000 classes) and the tiny extractor, ${threads} threads; "x PyTorch time" = ms / PyTorch ms`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of table) console.log(line(row));
  if (all.some((r) => r.perImage)) console.log('* per image: time per image over PyTorch\'s time per image in its batch training step at the same size');
}

function printProfile(p: Profile): void {
  console.log(`\nWhere the time goes: one ${p.model} training step on ${p.backend}, ${p.size} px, batch ${p.batch} (tf.profile)`);
  console.log(`step wall time ${p.wallMs.toFixed(0)} ms under the profiler; kernels ${p.kernelMs.toFixed(0)} ms (${((100 * p.kernelMs) / p.wallMs).toFixed(0)}%), ` +
    `the rest is JavaScript (tape, gradient bookkeeping, tensor allocation, profiler)`);
  const header = ['kernel', 'calls', 'ms', '% of step'];
  const rows = p.kernels.slice(0, 10).map((k) => [k.name, `${k.calls}`, k.ms.toFixed(0), ((100 * k.ms) / p.wallMs).toFixed(1)]);
  const rest = p.kernels.slice(10);
  const restMs = rest.reduce((s, k) => s + k.ms, 0);
  rows.push([`(${rest.length} other kernels)`, `${rest.reduce((s, k) => s + k.calls, 0)}`, restMs.toFixed(0), ((100 * restMs) / p.wallMs).toFixed(1)]);
  rows.push(['(outside kernels)', '', (p.wallMs - p.kernelMs).toFixed(0), ((100 * (p.wallMs - p.kernelMs)) / p.wallMs).toFixed(1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i], i > 0)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  if (p.scopes.length > 0) {
    console.log(`custom-gradient ops (their time includes the kernels they run, counted above; their own JavaScript is "outside kernels"): ` +
      p.scopes.map((k) => `${k.name} ${k.calls} calls ${k.ms.toFixed(0)} ms`).join(', '));
  }
  console.log('slowest single calls (input shapes):');
  for (const c of p.topCalls) console.log(`  ${c.ms.toFixed(0).padStart(6)} ms  ${c.name} ${c.shapes}`);
}

/** wasm ms / wasm-native ms for every measurement both backends made. */
function printSpeedups(rows: Row[]): void {
  const byKey = new Map<string, { wasm?: Row; native?: Row }>();
  for (const r of rows) {
    const kind = r.backend.startsWith('tfjs-wasm-native') && !r.backend.includes('fallback') ? 'native'
      : r.backend.startsWith('tfjs-wasm (') ? 'wasm' : null;
    if (kind === null) continue;
    const key = `${r.kind} ${r.model} ${r.size} px batch ${r.batch}`;
    const e = byKey.get(key) ?? {};
    e[kind] = r;
    byKey.set(key, e);
  }
  const pairs = [...byKey].filter(([, e]) => e.wasm && e.native);
  if (pairs.length === 0) return;
  console.log('\nwasm-native against wasm (ms wasm / ms wasm-native):');
  for (const [key, e] of pairs) {
    console.log(`  ${key.padEnd(50)} ${e.wasm!.medianMs.toFixed(0).padStart(6)} -> ${e.native!.medianMs.toFixed(0).padStart(6)} ms  ${(e.wasm!.medianMs / e.native!.medianMs).toFixed(2)}x`);
  }
}

/** Calls, ms and session builds per native kernel since the last print (then reset). */
function printNativeStats(): void {
  const stats = nativeKernelStats(true);
  const parts = [...stats].sort((a, b) => b[1].ms - a[1].ms)
    .map(([k, s]) => `${k} ${s.calls} calls ${s.ms.toFixed(0)} ms (${s.sessions} sessions built in ${s.sessionMs.toFixed(0)} ms)`);
  console.error(`  native kernels: ${parts.join('; ')}; process RSS ${(process.memoryUsage.rss() / 2 ** 30).toFixed(2)} GiB`);
}

async function run(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  log.level = 'warn';
  const torch: TorchFile | null = o.torch ? (JSON.parse(fs.readFileSync(o.torch, 'utf8')) as TorchFile) : null;
  const info = await initBackend({ name: 'wasm', threads: o.threads });
  seedEverything(0);
  const startLoad = os.loadavg();
  console.log(`tfjs ${tf.version_core}, backend ${info.name} (${info.simd ? 'SIMD, ' : ''}${info.threads} threads), Node ${process.version}, ` +
    `${os.availableParallelism()} cores (${os.cpus()[0]?.model ?? 'unknown cpu'}); load average ${startLoad.map((v) => v.toFixed(2)).join(' ')}`);
  if (info.threads !== o.threads) console.log(`warning: wasm runs ${info.threads} threads, ${o.threads} requested`);
  const rows: Row[] = [];
  const profiles: Profile[] = [];
  const infos: BackendInfo[] = [];
  for (const backend of o.backends) {
    const bi = await initBackend({ name: backend, threads: o.threads });
    infos.push(bi);
    const fellBack = backend === 'wasm-native' && bi.native === undefined;
    const label = `tfjs-${backend} (${bi.threads}t)${fellBack ? ' [fallback: wasm]' : ''}`;
    if (bi.native !== undefined) console.log(`${label}: native kernels ${bi.native}`);
    if (o.only.has('train')) {
      for (const size of o.sizes) {
        const { ms } = measureTrainer(() => resnetTrainer(size, o.batch), o.warmup, o.steps);
        rows.push({ kind: 'train', backend: label, model: 'resnet18', size, batch: o.batch, ms, medianMs: median(ms), load: load1() });
        progressLine(rows[rows.length - 1]);
      }
    }
    if (o.only.has('profile')) {
      const p = await profileStep(label, 'ResNet-18', () => resnetTrainer(o.sizes[0], o.batch), o.sizes[0], o.batch, o.warmup);
      profiles.push(p);
      console.error(`  profile ${label} ${o.sizes[0]} px: ${p.wallMs.toFixed(0)} ms`);
      if (o.only.has('extractor')) {
        const e = await profileStep(label, 'tiny extractor', () => extractorTrainer(o.batch), 128, o.batch, o.warmup);
        profiles.push(e);
        console.error(`  profile ${label} tiny extractor: ${e.wallMs.toFixed(0)} ms`);
      }
    }
    if (o.only.has('forward')) rows.push(...forwardRows(o.sizes, [...new Set([1, o.batch])], o.forwardRuns, label));
    if (o.only.has('extractor')) {
      const { ms } = measureTrainer(() => extractorTrainer(o.batch), o.warmup, o.steps);
      rows.push({ kind: 'extractor', backend: label, model: 'point_hoi r18x0.25 n32/h32', size: 128, batch: o.batch, ms, medianMs: median(ms), load: load1() });
      progressLine(rows[rows.length - 1]);
    }
    if (bi.native !== undefined) printNativeStats();
  }
  if (o.only.has('cpu') && o.cpuSteps > 0) {
    await initBackend({ name: 'cpu' });
    for (const size of o.cpuSizes) {
      const t0 = performance.now();
      const { ms } = measureTrainer(() => resnetTrainer(size, o.cpuBatch), 0, o.cpuSteps);
      rows.push({ kind: 'train', backend: 'tfjs-cpu (1t)', model: 'resnet18', size, batch: o.cpuBatch, ms, medianMs: median(ms), load: load1(), note: 'cold' });
      progressLine(rows[rows.length - 1]);
      console.error(`  (cpu: ${((performance.now() - t0) / 1000).toFixed(0)} s in all)`);
    }
  }

  // The table groups rows by what was measured: train steps, forward, extractor.
  const order = { train: 0, forward: 1, extractor: 2 } as const;
  const rank = (r: Row): number => (r.backend.startsWith('tfjs-cpu') ? 1 : 0);
  rows.sort((a, b) => order[a.kind] - order[b.kind] || a.size - b.size || rank(a) - rank(b) || a.batch - b.batch);
  printTable(rows, torch, o.threads);
  printSpeedups(rows);
  if (torch) {
    const blas = torch.meta.blas_libraries?.join(', ') || 'unknown';
    const tl = (v?: number[]): string => (v ? v.map((x) => x.toFixed(2)).join(' ') : '?');
    console.log(`PyTorch: ${torch.meta.model}; BLAS ${blas}; load average during its run ${tl(torch.meta.loadavg_start)} -> ${tl(torch.meta.loadavg_end)}`);
  }
  if (!o.only.has('cpu') || o.cpuSteps === 0) console.log('tfjs-cpu: skipped (--cpu-steps 0); it takes minutes per ResNet-18 step');
  else if (!o.cpuSizes.includes(224)) console.log(`tfjs-cpu: batch ${o.cpuBatch} at ${o.cpuSizes.join(', ')} px only (a batch-8 step at 128 px takes 10-20 minutes); --cpu-batch 8 --cpu-sizes 128,224 for more`);
  for (const p of profiles) printProfile(p);
  console.log(`\nload average at the end: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  if (o.json) {
    fs.writeFileSync(o.json, `${JSON.stringify({ backend: info, backends: infos, loadStart: startLoad, loadEnd: os.loadavg(), rows, profiles, torch }, null, 1)}\n`);
  }
}

run().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  },
);
