import { SingleBar, Presets } from 'cli-progress';
import { log } from './logger';

/**
 * A progress bar with rate and ETA on stderr (cli-progress). It draws only on a terminal and is
 * silent otherwise (CI logs, pipes), where it prints one summary line at the end instead.
 */
export class Progress {
  private bar: SingleBar | null = null;
  private readonly started = Date.now();
  private value = 0;

  constructor(private readonly label: string, private readonly total: number, private readonly unit = 'it') {
    if (process.stderr.isTTY && log.level !== 'silent' && log.level !== 'error' && log.level !== 'warn') {
      this.bar = new SingleBar(
        {
          format: `${label} |{bar}| {value}/{total} ${unit} | {rate} ${unit}/s | ETA {eta_formatted} {extra}`,
          stream: process.stderr,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
        },
        Presets.shades_classic,
      );
      this.bar.start(total, 0, { rate: '0.0', extra: '' });
      log.beforeWrite = () => process.stderr.write('\r\x1b[K');
    }
  }

  /** Advance by `n` and optionally show extra text such as `loss 0.512`. */
  tick(n = 1, extra = ''): void {
    this.value += n;
    if (this.bar) this.bar.update(this.value, { rate: this.rate().toFixed(1), extra });
  }

  /** Items per second since the bar started. */
  rate(): number {
    const s = (Date.now() - this.started) / 1000;
    return s > 0 ? this.value / s : 0;
  }

  stop(): void {
    if (this.bar) {
      this.bar.stop();
      log.beforeWrite = null;
    }
    const s = (Date.now() - this.started) / 1000;
    log.info(`${this.label}: ${this.value}/${this.total} ${this.unit} in ${s.toFixed(1)} s (${this.rate().toFixed(1)} ${this.unit}/s)`);
  }
}
