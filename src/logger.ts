/**
 * One logger for all human-facing output. It writes to stderr so that stdout stays clean for
 * machine-readable results (`--json` prints its object as the last line of stdout).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

class Logger {
  level: LogLevel = (process.env.HOI2ANOMALY_LOG as LogLevel | undefined) ?? 'info';
  /** Set by the progress bar while it draws, so log lines can clear the bar's line first. */
  beforeWrite: (() => void) | null = null;

  private write(level: LogLevel, msg: string): void {
    if (ORDER[level] < ORDER[this.level]) return;
    this.beforeWrite?.();
    const prefix = level === 'info' ? '' : `${level}: `;
    process.stderr.write(`${prefix}${msg}\n`);
  }
  debug(msg: string): void { this.write('debug', msg); }
  info(msg: string): void { this.write('info', msg); }
  warn(msg: string): void { this.write('warn', msg); }
  error(msg: string): void { this.write('error', msg); }
}

export const log = new Logger();
