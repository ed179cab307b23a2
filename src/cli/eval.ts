import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

interface Args {
  target: 'extractor';
  checkpoint: string;
  data: string;
  split: 'train' | 'val' | 'test';
  classifier?: string;
  dump?: string;
  set: string[];
  backend?: string;
  'batch-size': number;
  json: boolean;
}

export const command: CommandModule<object, Args> = {
  command: 'eval <target>',
  describe: 'Evaluate a trained model: `eval extractor` reports HOI mAP (HICO-DET protocol), anomaly AUC/AP and baselines',
  builder: (y: Argv) =>
    y
      .positional('target', { choices: ['extractor'] as const, describe: 'What to evaluate' })
      .option('checkpoint', { type: 'string', demandOption: true, describe: 'A run folder (its best checkpoint, else last) or a step-N folder' })
      .option('data', { type: 'string', demandOption: true, describe: 'Dataset folder written by build-dataset' })
      .option('split', { choices: ['train', 'val', 'test'] as const, default: 'test' as const, describe: 'Split to evaluate' })
      .option('classifier', { type: 'string', describe: 'A run of the image-level classifier to report as a baseline on the same split' })
      .option('dump', { type: 'string', describe: 'Write predictions (boxes in original pixels) as JSON for outside tools' })
      .option('set', { type: 'string', array: true, default: [] as string[], describe: 'Override a decoding key, e.g. --set nms_threshold=0.6 (keys of the decode section)' })
      .option('batch-size', { type: 'number', default: 8, describe: 'Images per forward pass' })
      .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'cpu'], default: 'auto', describe: 'Compute backend' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the metrics as one JSON object on the last line of stdout' })
      .example('$0 eval extractor --checkpoint runs/extractor --data runs/data/synth --classifier runs/classifier --dump runs/extractor/test_predictions.json', '') as unknown as Argv<Args>,
  handler: async (args: ArgumentsCamelCase<Args>) => {
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
