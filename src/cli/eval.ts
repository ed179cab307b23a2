/**
 * `hoi2anomaly eval extractor | vlp`: metrics of a trained model on a dataset split.
 * extractor: HOI mAP (HICO-DET protocol), anomaly AUC/AP and baselines.
 * vlp: explanation metrics (BLEU, ROUGE-L, CIDEr-D) and grounded faithfulness (verdict accuracy,
 * triplet P/R/F1, hallucination, attribution); `--compare RUN` scores a second explainer (e.g. the
 * `model.box_encoding=false` ablation) on the same split and inputs and prints both side by side.
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

interface Args {
  target: 'extractor' | 'vlp';
  checkpoint: string;
  data: string;
  split: 'train' | 'val' | 'test';
  classifier?: string;
  dump?: string;
  set: string[];
  backend?: string;
  'batch-size': number;
  json: boolean;
  'hoi-source'?: 'gt' | 'extractor';
  'max-images'?: number;
  compare?: string;
  extractor?: string;
}

export const command: CommandModule<object, Args> = {
  command: 'eval <target>',
  describe: 'Evaluate a trained model: `eval extractor` reports HOI mAP (HICO-DET protocol), anomaly AUC/AP and baselines; `eval vlp` the explanation and faithfulness metrics',
  builder: (y: Argv) =>
    y
      .positional('target', { choices: ['extractor', 'vlp'] as const, describe: 'What to evaluate' })
      .option('checkpoint', { type: 'string', demandOption: true, describe: 'A run folder (its best checkpoint, else last) or a step-N folder' })
      .option('data', { type: 'string', demandOption: true, describe: 'Dataset folder written by build-dataset' })
      .option('split', { choices: ['train', 'val', 'test'] as const, default: 'test' as const, describe: 'Split to evaluate' })
      .option('classifier', { type: 'string', describe: 'A run of the image-level classifier to report as a baseline on the same split' })
      .option('dump', { type: 'string', describe: 'Write predictions as JSON for outside tools (extractor: boxes in original pixels; vlp: {"images":[{"id","explanation","verdict"}]})' })
      .option('set', { type: 'string', array: true, default: [] as string[], describe: 'extractor: override a decoding key, e.g. --set nms_threshold=0.6 (keys of the decode section)' })
      .option('batch-size', { type: 'number', default: 8, describe: 'Images per forward pass' })
      .option('hoi-source', { choices: ['gt', 'extractor'] as const, describe: 'vlp: HOI inputs from the ground truth or from the extractor (default: what the run was trained with)' })
      .option('max-images', { type: 'number', describe: 'vlp: evaluate the first N images of the split only' })
      .option('compare', { type: 'string', describe: 'vlp: a second explainer run (e.g. the box_encoding=false ablation) scored on the same split and inputs' })
      .option('extractor', { type: 'string', describe: 'vlp: an extractor run to use instead of the one the explainer run names' })
      .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'wasm-native', 'cpu'], default: 'auto', describe: 'Compute backend (wasm-native: wasm with convolutions and matmuls in ONNX Runtime)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the metrics as one JSON object on the last line of stdout' })
      .example('$0 eval extractor --checkpoint runs/extractor --data runs/data/synth --classifier runs/classifier --dump runs/extractor/test_predictions.json', '')
      .example('$0 eval vlp --checkpoint runs/vlp --data runs/data/synth --compare runs/vlp_nobox --json', 'Explainer metrics with the no-box ablation beside them') as unknown as Argv<Args>,
  handler: async (args: ArgumentsCamelCase<Args>) => {
    if (args.target === 'vlp') return evalVlp(args);
    const { UsageError } = await import('../errors.js');
    for (const k of ['hoi-source', 'max-images', 'compare', 'extractor'] as const) {
      if (args[k] !== undefined) throw new UsageError(`--${k} applies to \`eval vlp\`, not \`eval extractor\``);
    }
    const { initBackend } = await import('../backend/index.js');
    const { evaluateExtractor } = await import('../eval/extractor_eval.js');
    const { describeMetrics } = await import('../train/train_extractor.js');
    const { writeFileAtomic } = await import('../fs_atomic.js');
    const { log } = await import('../logger.js');
    await initBackend({ name: args.backend as 'auto' });
    const r = await evaluateExtractor({ checkpoint: args.checkpoint, data: args.data, split: args.split, classifier: args.classifier, batchSize: args['batch-size'], decodeSets: args.set });
    log.info(`${r.checkpoint.dir} (step ${r.checkpoint.step}) on ${args.split}: ${describeMetrics(r.metrics)}; ${r.metrics.images_per_s.toFixed(1)} images/s`);
    if (args.dump) {
      writeFileAtomic(args.dump, `${JSON.stringify({ checkpoint: r.checkpoint, split: args.split, images: r.predictions })}\n`);
      log.info(`predictions written to ${args.dump}`);
    }
    if (args.json) {
      const m = r.metrics;
      const finite = (v: number): number | null => (Number.isFinite(v) ? v : null);
      const baselines = Object.fromEntries(Object.entries(m.baselines).map(([k, b]) => [k, { auc: finite(b.auc), ap: finite(b.ap) }]));
      process.stdout.write(`${JSON.stringify({ map: finite(m.map), map_rare: finite(m.map_rare), map_non_rare: finite(m.map_non_rare), auc: finite(m.auc), ap: finite(m.ap), images: m.images, images_per_s: finite(m.images_per_s), baselines })}\n`);
    }
  },
};

async function evalVlp(args: ArgumentsCamelCase<Args>): Promise<void> {
  const { UsageError } = await import('../errors.js');
  if (args.classifier !== undefined || args.set.length > 0) throw new UsageError('--classifier and --set apply to `eval extractor`, not `eval vlp`');
  const { initBackend } = await import('../backend/index.js');
  const { evaluateVlp, describeVlpMetrics, VLP_METRIC_KEYS } = await import('../eval/vlp_eval.js');
  const { writeFileAtomic } = await import('../fs_atomic.js');
  const { log } = await import('../logger.js');
  await initBackend({ name: args.backend as 'auto' });
  const request = { data: args.data, split: args.split, hoiSource: args['hoi-source'], maxImages: args['max-images'], batchSize: args['batch-size'], extractor: args.extractor };
  const r = await evaluateVlp({ ...request, checkpoint: args.checkpoint });
  log.info(`${r.checkpoint.dir} (step ${r.checkpoint.step}) on ${args.split}, HOIs from ${r.hoiSource}: ${describeVlpMetrics(r.metrics)}`);
  // the second run gets the same HOI source as the first, so the two differ only by their model
  const other = args.compare ? await evaluateVlp({ ...request, hoiSource: r.hoiSource, checkpoint: args.compare }) : null;
  if (other) {
    log.info(`${other.checkpoint.dir} (step ${other.checkpoint.step}): ${describeVlpMetrics(other.metrics)}`);
    const rows = [...VLP_METRIC_KEYS].map((k) => {
      const a = r.metrics[k], b = other.metrics[k];
      return `  ${k.padEnd(22)} ${fmt(a).padStart(8)} ${fmt(b).padStart(8)} ${fmt(a - b, true).padStart(8)}`;
    });
    log.info(`comparison on ${args.split} (${r.metrics.images} images, HOIs from ${r.hoiSource}):\n  ${'metric'.padEnd(22)} ${'run'.padStart(8)} ${'compare'.padStart(8)} ${'delta'.padStart(8)}\n${rows.join('\n')}`);
  }
  if (args.dump) {
    writeFileAtomic(args.dump, `${JSON.stringify({ checkpoint: r.checkpoint, split: args.split, hoi_source: r.hoiSource, images: r.explanations })}\n`);
    log.info(`explanations written to ${args.dump}`);
  }
  if (args.json) {
    const json = (m: typeof r.metrics, checkpoint: { dir: string; step: number }) => ({
      ...Object.fromEntries([...VLP_METRIC_KEYS, 'loss', 'images_per_s'].map((k) => [k, finite(m[k as keyof typeof m])])),
      images: m.images, checkpoint,
    });
    process.stdout.write(`${JSON.stringify({ ...json(r.metrics, r.checkpoint), hoi_source: r.hoiSource, ...(other ? { compare: json(other.metrics, other.checkpoint) } : {}) })}\n`);
  }
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function fmt(v: number, signed = false): string {
  if (!Number.isFinite(v)) return 'n/a';
  return `${signed && v >= 0 ? '+' : ''}${v.toFixed(4)}`;
}
