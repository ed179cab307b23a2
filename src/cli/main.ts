import yargs from 'yargs';
import { HoiError } from '../errors';
import { log } from '../logger';

/**
 * The CLI: one file per command under src/cli, registered here. Handlers never call
 * process.exit; this wrapper maps errors to exit codes (2 usage/config, 1 runtime), prints a
 * one-line message, and the stack only with --verbose.
 */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  const parser = yargs(argv)
    .scriptName('hoi2anomaly')
    .usage('$0 <command> [options]\n\nExplainable, HOI-guided image anomaly detection.')
    .option('verbose', { type: 'boolean', default: false, describe: 'Print stack traces and debug output' })
    .middleware((args) => {
      if (args.verbose) log.level = 'debug';
    })
    .command(require('./build_dataset').command)
    .command(require('./train').command)
    .command(require('./finetune').command)
    .command(require('./eval').command)
    .command(require('./export').command)
    .command(require('./explain').command)
    .command(require('./quickstart').command)
    .demandCommand(1, 'Name a command (see --help).')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .exitProcess(false)
    .fail((msg, err) => {
      // Throwing stops yargs from running the handler after a validation failure.
      throw err ?? new UsageFailure(msg);
    });
  try {
    await parser.parseAsync();
    return 0;
  } catch (err) {
    return report(err, verbose);
  }
}

class UsageFailure extends Error {}

function report(err: unknown, verbose: boolean): number {
  if (err instanceof UsageFailure) {
    log.error(`${err.message}\nRun with --help for usage.`);
    return 2;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const code = e instanceof HoiError ? e.exitCode : 1;
  log.error(e.message);
  if (verbose) {
    log.error(e.stack ?? '');
    let cause = (e as { cause?: unknown }).cause;
    while (cause instanceof Error) {
      log.error(`caused by: ${cause.stack ?? cause.message}`);
      cause = (cause as { cause?: unknown }).cause;
    }
  }
  return code;
}
