/**
 * `hoi2anomaly finetune vlp`: fine-tunes the explainer on a dataset, conditioned on the frozen
 * features of a trained extractor and on HOI inputs (ground truth with noise, or the extractor's
 * predictions); from scratch or from a local GPT-2-format checkpoint (--init).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

interface Args {
  target: 'vlp';
  config?: string;
  data: string;
  extractor: string;
  out: string;
  init?: string;
  resume: boolean;
  set: string[];
  backend?: string;
  json: boolean;
}

export const command: CommandModule<object, Args> = {
  command: 'finetune <target>',
  describe: 'Fine-tune a model: `finetune vlp` (the explainer that writes the verdict and the grounded explanation)',
  builder: (y: Argv) =>
    y
      .positional('target', { choices: ['vlp'] as const, describe: 'What to fine-tune' })
      .option('config', { type: 'string', describe: 'YAML config (configs/vlp/tiny.yaml, small.yaml)' })
      .option('data', { type: 'string', demandOption: true, describe: 'Dataset folder written by build-dataset' })
      .option('extractor', { type: 'string', demandOption: true, describe: 'Run folder of a trained extractor (`train extractor`): its frozen backbone gives the visual features' })
      .option('out', { type: 'string', demandOption: true, describe: 'Run folder: config.yaml, tokenizer.json, metrics.jsonl, tb/, step-N/ checkpoints, best, last' })
      .option('init', { type: 'string', describe: 'A local GPT-2-format folder (config.json, model.safetensors, tokenizer.json): its decoder is frozen, with LoRA adapters of rank lora.rank' })
      .option('resume', { type: 'boolean', default: false, describe: 'Continue from the last complete checkpoint in --out (same results as an uninterrupted run)' })
      .option('set', { type: 'string', array: true, default: [] as string[], describe: 'Override a config key, e.g. --set train.steps=500 or --set model.box_encoding=false (repeatable)' })
      .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'wasm-native', 'cpu'], describe: 'Compute backend (config key backend.name); auto = tensorflow > wasm-native > cpu; wasm-native = wasm with ONNX Runtime matmul/conv kernels' })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON summary as the last line of stdout' })
      .example('$0 finetune vlp --config configs/vlp/tiny.yaml --data runs/data/synth --extractor runs/extractor --out runs/vlp', 'Fine-tune the tiny explainer')
      .example('$0 finetune vlp --config configs/vlp/tiny.yaml --set model.box_encoding=false --data runs/data/synth --extractor runs/extractor --out runs/vlp_nobox', 'The ablation without box encodings')
      .example('$0 finetune vlp --config configs/vlp/small.yaml --init models/gpt2 --data runs/data/synth --extractor runs/extractor --out runs/vlp_gpt2', 'Start from a local GPT-2 (frozen, LoRA)') as unknown as Argv<Args>,
  handler: async (args: ArgumentsCamelCase<Args>) => {
    const { loadConfig } = await import('../config/load.js');
    const { VlpConfigSchema } = await import('../config/vlp.js');
    const { finetuneVlp } = await import('../train/finetune_vlp.js');
    const { describeVlpMetrics } = await import('../eval/vlp_eval.js');
    const { log } = await import('../logger.js');
    const config = loadConfig(VlpConfigSchema, { file: args.config, flags: { 'backend.name': args.backend }, sets: args.set });
    const s = await finetuneVlp({ config, data: args.data, extractor: args.extractor, out: args.out, init: args.init, resume: args.resume });
    const bestText = s.best ? `best ${config.train.best_metric} ${(100 * s.best.value).toFixed(2)} at step ${s.best.step}` : 'no best checkpoint';
    log.info(`${s.stoppedEarly ? 'stopped' : 'finished'} at step ${s.steps} in ${s.seconds.toFixed(0)} s (${s.stepsPerSecond.toFixed(2)} steps/s) on ${s.backend.name}; ${bestText}; run folder ${s.out}`);
    if (s.lastMetrics) log.info(`last validation: ${describeVlpMetrics(s.lastMetrics)}`);
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ out: s.out, steps: s.steps, seconds: s.seconds, steps_per_s: s.stepsPerSecond, backend: s.backend.name, best: s.best, metrics: s.lastMetrics })}\n`);
    }
  },
};
