import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

interface Args {
  target: 'extractor';
  config?: string;
  data: string;
  out: string;
  resume: boolean;
  set: string[];
  backend?: string;
  json: boolean;
}

export const command: CommandModule<object, Args> = {
  command: 'train <target>',
  describe: 'Train a model: `train extractor` (the HOI extractor, or with model.kind=image_classifier the image-level baseline)',
  builder: (y: Argv) =>
    y
      .positional('target', { choices: ['extractor'] as const, describe: 'What to train' })
      .option('config', { type: 'string', describe: 'YAML config (configs/extractor/tiny.yaml, resnet18.yaml, resnet50.yaml)' })
      .option('data', { type: 'string', demandOption: true, describe: 'Dataset folder written by build-dataset' })
      .option('out', { type: 'string', demandOption: true, describe: 'Run folder: config.yaml, metrics.jsonl, tb/, step-N/ checkpoints, best, last' })
      .option('resume', { type: 'boolean', default: false, describe: 'Continue from the last complete checkpoint in --out (same results as an uninterrupted run)' })
      .option('set', { type: 'string', array: true, default: [] as string[], describe: 'Override a config key, e.g. --set train.steps=500 (repeatable)' })
      .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'wasm-native', 'cpu'], describe: 'Compute backend (config key backend.name); auto = tensorflow > wasm-native > cpu; wasm-native = wasm with convolutions and matmuls in ONNX Runtime' })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON summary as the last line of stdout' })
      .example('$0 train extractor --config configs/extractor/tiny.yaml --data runs/data/synth --out runs/extractor', 'Train the tiny extractor')
      .example('$0 train extractor --config configs/extractor/tiny.yaml --set model.kind=image_classifier --data runs/data/synth --out runs/classifier', 'Train the image-level baseline')
      .example('$0 train extractor --config configs/extractor/tiny.yaml --data runs/data/synth --out runs/extractor --resume', 'Continue an interrupted run') as unknown as Argv<Args>,
  handler: async (args: ArgumentsCamelCase<Args>) => {
    const { loadConfig } = await import('../config/load.js');
    const { ExtractorConfigSchema } = await import('../config/extractor.js');
    const { trainExtractor } = await import('../train/train_extractor.js');
    const { log } = await import('../logger.js');
    const config = loadConfig(ExtractorConfigSchema, { file: args.config, flags: { 'backend.name': args.backend }, sets: args.set });
    const s = await trainExtractor({ config, data: args.data, out: args.out, resume: args.resume });
    const bestText = s.best ? `best ${config.train.best_metric} ${(100 * s.best.value).toFixed(2)} at step ${s.best.step}` : 'no best checkpoint';
    log.info(`${s.stoppedEarly ? 'stopped' : 'finished'} at step ${s.steps} in ${s.seconds.toFixed(0)} s on ${s.backend.name}; ${bestText}; run folder ${s.out}`);
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ out: s.out, steps: s.steps, seconds: s.seconds, backend: s.backend.name, best: s.best, metrics: s.lastMetrics })}\n`);
    }
  },
};
