import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

interface Args {
  source: 'synth' | 'hico-det' | 'odgt';
  out: string;
  annotations?: string;
  images?: string;
  'num-images'?: number;
  'image-size'?: number;
  seed?: number;
  config?: string;
  set: string[];
  overwrite: boolean;
  'skip-invalid': boolean;
  json: boolean;
}

export const command: CommandModule<object, Args> = {
  command: 'build-dataset',
  describe: 'Build an instruction-tuning dataset (manifest.json, train/val/test.jsonl, images/) from the synth generator, HICO-DET or ODGT annotations',
  builder: (y: Argv) =>
    y
      .option('source', { choices: ['synth', 'hico-det', 'odgt'] as const, default: 'synth' as const, describe: 'Where the images and HOI annotations come from' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output dataset folder (written atomically)' })
      .option('annotations', { type: 'string', describe: 'Annotation file: HOIA JSON (hico-det) or .odgt lines (odgt)' })
      .option('images', { type: 'string', describe: 'Folder holding the images named by the annotations (hico-det, odgt)' })
      .option('num-images', { type: 'number', describe: 'Images to generate (synth); config key num_images' })
      .option('image-size', { type: 'number', describe: 'Square image size in pixels (synth); config key synth.image_size' })
      .option('seed', { type: 'number', describe: 'Seed of the generator, the split hash and the phrasing; config key seed' })
      .option('config', { type: 'string', describe: 'YAML config (see configs/dataset/), holding what differs from the defaults' })
      .option('set', { type: 'string', array: true, default: [] as string[], describe: 'Override a config key, e.g. --set synth.noise=0.2 (repeatable)' })
      .option('overwrite', { type: 'boolean', default: false, describe: 'Replace an existing output folder (only after the new build succeeded)' })
      .option('skip-invalid', { type: 'boolean', default: false, describe: 'Skip bad annotation entries and report how many, instead of stopping at the first' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the summary as one JSON object on the last line of stdout' })
      .example('$0 build-dataset --out runs/data/synth --num-images 2000 --image-size 128', 'Synthetic threat scenes')
      .example('$0 build-dataset --source hico-det --annotations anno/trainval_hico.json --images images/train2015 --out runs/data/hico', 'HICO-DET (HOIA JSON)')
      .example('$0 build-dataset --source odgt --annotations train.odgt --images images --out runs/data/td', 'ODGT lines (HoiTransformer / Hoi2Threat)') as unknown as Argv<Args>,
  handler: async (args: ArgumentsCamelCase<Args>) => {
    const { loadConfig } = await import('../config/load.js');
    const { DatasetConfigSchema } = await import('../config/dataset.js');
    const { buildDataset } = await import('../data/build.js');
    const { log } = await import('../logger.js');
    const config = loadConfig(DatasetConfigSchema, {
      file: args.config,
      flags: { num_images: args['num-images'], 'synth.image_size': args['image-size'], seed: args.seed },
      sets: args.set,
    });
    const summary = await buildDataset({
      source: args.source,
      out: args.out,
      config,
      annotations: args.annotations,
      images: args.images,
      overwrite: args.overwrite,
      skipInvalid: args['skip-invalid'],
    });
    const m = summary.manifest;
    log.info(`wrote ${summary.out}: ${summary.images} images in ${summary.seconds.toFixed(1)} s (${summary.imagesPerSecond.toFixed(0)} img/s)`);
    for (const [split, s] of Object.entries(m.splits)) {
      log.info(`  ${split.padEnd(5)} ${String(s.images).padStart(7)} images, ${String(s.anomalous).padStart(6)} anomalous (${(100 * s.anomalous_ratio).toFixed(1)}%), ${s.hois} HOIs`);
    }
    log.info(`  HOI categories: ${Object.keys(m.hoi_counts).length}; clipped boxes: ${m.clipped_boxes}; skipped entries: ${m.skipped_entries}`);
    const auc = m.hard_negatives.weapon_present_auc_test;
    log.info(`  hard negatives: ${m.hard_negatives.normal_images_with_weapon.test} normal test images with a weapon; "weapon present" test AUC ${auc === null ? 'n/a' : auc.toFixed(3)}`);
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ out: summary.out, images: summary.images, splits: m.splits, skipped: summary.skipped, clipped: summary.clipped, weapon_present_auc: auc, seconds: summary.seconds })}\n`);
    }
  },
};
