/**
 * `hoi2anomaly quickstart`: the whole pipeline on the embedded synthetic default (build a synth
 * set, train the tiny extractor, fine-tune the tiny explainer, evaluate both, export ONNX, explain
 * a few test images) in one folder, with a results table at the end. See src/quickstart/.
 */
import { join } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

interface Args {
  out: string;
  config?: string;
  overwrite: boolean;
  images?: number;
  'image-size'?: number;
  'extractor-steps'?: number;
  'vlp-steps'?: number;
  'explain-images'?: number;
  backend?: string;
  set: string[];
  json: boolean;
}

export const command: CommandModule<object, Args> = {
  command: 'quickstart',
  describe: 'Run the whole pipeline on the embedded synthetic default (dataset, extractor, explainer, evaluation, ONNX export, explain) and print a results table',
  builder: (y: Argv) =>
    y
      .option('out', { type: 'string', default: 'runs/quickstart', describe: 'Folder for everything: dataset/, extractor/, vlp/, export/, explain/, results.md' })
      .option('config', { type: 'string', describe: 'Quickstart YAML (default: the embedded configs/quickstart.yaml)' })
      .option('overwrite', { type: 'boolean', default: false, describe: 'Redo every stage instead of reusing complete ones' })
      .option('images', { type: 'number', describe: 'Synthetic images to build (config key dataset.num_images)' })
      .option('image-size', { type: 'number', describe: 'Side of the rendered images in pixels (dataset.image_size)' })
      .option('extractor-steps', { type: 'number', describe: 'Training steps of the extractor (extractor.steps)' })
      .option('vlp-steps', { type: 'number', describe: 'Fine-tuning steps of the explainer (vlp.steps)' })
      .option('explain-images', { type: 'number', describe: 'Test images to explain at the end (explain.images)' })
      .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'wasm-native', 'cpu'], describe: 'Compute backend of training and evaluation (backend.name); auto = tensorflow > wasm-native > cpu' })
      .option('set', { type: 'string', array: true, default: [] as string[], describe: 'Override a quickstart key, e.g. --set extractor.input_size=64 or --set "vlp.set=[train.batch_size=8]" (repeatable)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON summary as the last line of stdout' })
      .example('$0 quickstart', 'The whole pipeline in runs/quickstart (about 20 minutes on 2 CPU cores)')
      .example('$0 quickstart --out runs/qs-toy --images 48 --image-size 64 --set extractor.input_size=64 --extractor-steps 10 --vlp-steps 10', 'A toy run in a minute or two')
      .example('$0 quickstart --overwrite', 'Redo every stage') as unknown as Argv<Args>,
  handler: async (args: ArgumentsCamelCase<Args>) => {
    const { loadQuickstartConfig, runQuickstart } = await import('../quickstart/index.js');
    const config = loadQuickstartConfig({
      file: args.config,
      flags: {
        'dataset.num_images': args.images, 'dataset.image_size': args['image-size'], 'extractor.steps': args['extractor-steps'],
        'vlp.steps': args['vlp-steps'], 'explain.images': args['explain-images'], 'backend.name': args.backend,
      },
      sets: args.set,
    });
    const r = await runQuickstart({ config, out: args.out, overwrite: args.overwrite });
    process.stdout.write(`${r.table}\n`);
    if (args.json) {
      const stages = Object.fromEntries(r.stages.map((s) => [s.name, { status: s.status, seconds: s.record.seconds, artefact: join(r.out, s.record.artefact), metrics: s.record.metrics, notes: s.record.notes }]));
      process.stdout.write(`${JSON.stringify({ out: r.out, seconds: r.seconds, results: r.resultsFile, stages }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`);
    }
  },
};
