/**
 * Build throughput of the synth source: images/s for a full `build-dataset` (render, PNG encode,
 * text, JSONL, manifest) at 128 and 256 px on all cores.
 *   npm run bench:build [-- --images 1000]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DatasetConfigSchema } from '../src/config/dataset';
import { loadConfig } from '../src/config/load';
import { buildDataset } from '../src/data/build';
import { log } from '../src/logger';

async function run(): Promise<void> {
  const i = process.argv.indexOf('--images');
  const images = i > 0 ? Number(process.argv[i + 1]) : 1000;
  log.level = 'warn';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hoi2anomaly-bench-'));
  console.log(`build-dataset --source synth, ${images} images, ${os.availableParallelism()} cores (${os.cpus()[0].model})`);
  try {
    for (const size of [128, 256]) {
      const config = loadConfig(DatasetConfigSchema, { sets: [`num_images=${images}`, `synth.image_size=${size}`] });
      const rates: number[] = [];
      for (let rep = 0; rep < 3; rep++) {
        const s = await buildDataset({ source: 'synth', out: path.join(dir, `s${size}-${rep}`), config });
        rates.push(s.imagesPerSecond);
      }
      rates.sort((a, b) => a - b);
      console.log(`${size} px: median ${rates[1].toFixed(0)} images/s (runs: ${rates.map((r) => r.toFixed(0)).join(', ')})`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void run();
