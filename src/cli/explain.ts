/**
 * `hoi2anomaly explain IMAGE|FOLDER...`: verdict, anomaly score, triplets and explanation per
 * image, an annotated PNG each, index.html for folders; on ONNX Runtime or tfjs
 * (library: src/infer/pipeline.ts).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

interface Args {
  inputs: string[];
  model: string;
  engine: 'onnx' | 'tfjs';
  out: string;
  images: boolean;
  threshold?: number;
  'max-triplets': number;
  json: boolean;
  timing: boolean;
  threads: number;
  backend: string;
}

export const command: CommandModule<object, Args> = {
  command: 'explain <inputs..>',
  describe: 'Detect HOI anomalies in images and explain them: JSON verdict + triplets + explanation, annotated PNGs, an HTML page for folders',
  builder: (y: Argv) =>
    y
      .positional('inputs', { type: 'string', array: true, describe: 'Image files (JPEG, PNG, ...) and folders of images' })
      .option('model', { type: 'string', demandOption: true, describe: 'Export folder written by `export onnx` (the tfjs engine also needs the source runs its manifest names)' })
      .option('engine', { choices: ['onnx', 'tfjs'] as const, default: 'onnx' as const, describe: 'onnx: onnxruntime-node on the exported graphs; tfjs: the source checkpoints (the extractor, and with an explainer its run and backbone checkpoint)' })
      .option('out', { type: 'string', default: 'runs/explain', describe: 'Folder for <name>.annotated.png, results.json and (folder inputs) index.html' })
      .option('images', { type: 'boolean', default: true, describe: 'Write annotated PNGs, results.json and index.html to --out (--no-images: only print results)' })
      .option('threshold', { type: 'number', describe: 'Verdict threshold on the anomaly score (default: the manifest\'s)' })
      .option('max-triplets', { type: 'number', default: 20, describe: 'Triplets reported per image (the verdict uses all)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object per image on stdout (failed files as {file, error})' })
      .option('timing', { type: 'boolean', default: false, describe: 'Print the latency per image and stage (preprocess, extractor, decode, explanation) and the mean' })
      .option('threads', { type: 'number', default: 2, describe: 'onnxruntime intra-op threads (extractor and explainer sessions)' })
      .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'wasm-native', 'cpu'], default: 'auto', describe: 'tfjs backend (tfjs engine only)' })
      .example('$0 explain photos/ --model runs/export --out runs/explain --timing', 'Explain a folder on ONNX Runtime; open runs/explain/index.html')
      .example('$0 explain a.jpg --model runs/export --engine tfjs --json', 'One JSON line for a.jpg, computed with tfjs') as unknown as Argv<Args>,
  handler: async (args: ArgumentsCamelCase<Args>) => {
    const { explainImages, describeTimings, meanTimings } = await import('../infer/pipeline.js');
    const { DataError } = await import('../errors.js');
    const { log } = await import('../logger.js');
    if (args.engine === 'tfjs') {
      const { initBackend } = await import('../backend/index.js');
      await initBackend({ name: args.backend as 'auto' });
    }
    const report = await explainImages(args.inputs, {
      model: args.model, engine: args.engine, out: args.images ? args.out : null,
      threshold: args.threshold, maxTriplets: args['max-triplets'], threads: args.threads,
      onResult: (r) => {
        if (args.json) process.stdout.write(`${JSON.stringify(r)}\n`);
        else log.info(`${r.file}: ${r.verdict} (anomaly score ${r.anomaly_score.toFixed(3)}, ${r.num_triplets} triplets)${r.explanation ? `: ${r.explanation}` : ''}`);
        if (args.timing) log.info(`  ${r.file}: ${describeTimings(r.timing_ms)}`);
      },
      onFailure: (f) => {
        if (args.json) process.stdout.write(`${JSON.stringify(f)}\n`);
      },
    });
    if (args.timing) {
      const mean = meanTimings(report.results);
      log.info(`${report.engine}; models loaded in ${report.loadSeconds.toFixed(2)} s`);
      if (mean) log.info(`mean over ${report.results.length} image(s): ${describeTimings(mean)}`);
    }
    if (report.out) log.info(`annotated images in ${report.out}${report.html ? `; page ${report.html}` : ''}`);
    if (report.failures.length > 0) {
      throw new DataError(`${report.failures.length} of ${report.failures.length + report.results.length} input(s) failed (see above)`);
    }
  },
};
