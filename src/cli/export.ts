/**
 * `hoi2anomaly export onnx`: trained runs -> extractor.onnx (+ vlp_prefix.onnx, vlp_decoder.onnx and
 * tokenizer.json with --vlp), manifest.json; refused when onnxruntime-node and tfjs disagree by
 * more than 1e-4 or their greedy decodes differ (library: src/export/export_models.ts,
 * src/export/export_explainer.ts).
 */
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';

interface Args {
  format: 'onnx';
  extractor: string;
  vlp?: string;
  out: string;
  overwrite: boolean;
  threshold?: number;
  'calibrate-on'?: string;
  'sample-images'?: string[];
  backend: string;
  json: boolean;
}

export const command: CommandModule<object, Args> = {
  command: 'export <format>',
  describe: 'Export trained models for deployment: `export onnx` writes ONNX graphs and a manifest, verified against tfjs in onnxruntime-node',
  builder: (y: Argv) =>
    y
      .positional('format', { choices: ['onnx'] as const, describe: 'Export format' })
      .option('extractor', { type: 'string', demandOption: true, describe: 'Extractor run folder (its best checkpoint, else last) or a step-N folder' })
      .option('vlp', { type: 'string', describe: 'Fine-tuned explainer (VLP) run folder (best checkpoint, else last) or a step-N folder: adds vlp_prefix.onnx, vlp_decoder.onnx and tokenizer.json; its extractor run must be beside it as finetune recorded it' })
      .option('out', { type: 'string', demandOption: true, describe: 'Export folder to create (written to a temporary folder and renamed when every check passed)' })
      .option('overwrite', { type: 'boolean', default: false, describe: 'Replace an existing --out folder' })
      .option('threshold', { type: 'number', describe: 'Verdict threshold on the anomaly score stored in the manifest (default 0.5: a high-severity pair at confidence >= 0.5)' })
      .option('calibrate-on', { type: 'string', describe: "A dataset folder: set the verdict threshold to the anomaly score that best separates its val split (max TPR - FPR); the manifest records it" })
      .option('sample-images', { type: 'string', array: true, describe: 'Images for the parity check (default: two built-in synthetic scenes); seeded noise is always checked too' })
      .option('backend', { choices: ['auto', 'tensorflow', 'wasm', 'wasm-native', 'cpu'], default: 'auto', describe: 'tfjs backend of the reference outputs' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the manifest as one JSON line on stdout' })
      .example('$0 export onnx --extractor runs/extractor --out runs/export', 'Export the extractor to runs/export/{extractor.onnx,manifest.json}')
      .example('$0 export onnx --extractor runs/extractor --calibrate-on runs/data/synth --out runs/export', 'Verdict threshold calibrated on the val split of runs/data/synth')
      .example('$0 export onnx --extractor runs/extractor --vlp runs/vlp --out runs/export', 'Also the explainer: vlp_prefix.onnx (backbone + prefix encoder), vlp_decoder.onnx, tokenizer.json') as unknown as Argv<Args>,
  handler: async (args: ArgumentsCamelCase<Args>) => {
    const { initBackend } = await import('../backend/index.js');
    const { exportModels } = await import('../export/export_models.js');
    await initBackend({ name: args.backend as 'auto' });
    const r = await exportModels({
      extractor: args.extractor, vlp: args.vlp ?? null, out: args.out, overwrite: args.overwrite,
      threshold: args.threshold, calibrateOn: args['calibrate-on'], sampleImages: args['sample-images'],
    });
    if (args.json) process.stdout.write(`${JSON.stringify(r.manifest)}\n`);
  },
};
