import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { readWorkerEnvironment, runWorkerAsMain, WORKER_USAGE } from '@kiln/worker';
import type { GatewayCommandOptions } from './gateway-commands.ts';
import { registerJobCommands } from './job-cli.ts';
import { loadWorker } from './load-worker.ts';
import { registerModelsCommands } from './models-commands.ts';

/** The CLI's version, from its package.json. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * Runs the `kiln` command line and resolves with the exit code.
 *
 * @example
 * process.exitCode = await main(['worker', 'src/worker.ts', '--serve-api']);
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('kiln')
    .description('Serverless GPU inference workers: run them locally behind a RunPod-compatible endpoint, deploy them to RunPod.')
    .version(VERSION, '-v, --version')
    .exitOverride()
    .showHelpAfterError();

  let exitCode = 0;
  program
    .command('worker')
    .description('run a worker file (.js or .ts): production mode when RUNPOD_WEBHOOK_GET_JOB is set, else a local mode')
    .argument('<file>', 'the file that exports defineWorker(...)')
    .argument('[worker-args...]', 'passed to the worker: --test-input JSON, --serve-api [--host H] [--port P]')
    .allowUnknownOption()
    .helpOption('-h, --help', `show help\n\n${WORKER_USAGE}`)
    .action(async (file: string, workerArgs: string[]) => {
      const worker = await loadWorker(file);
      await runWorkerAsMain(worker, { environment: readWorkerEnvironment(process.env, workerArgs) });
    });

  for (const [name, description] of [
    ['serve', "run the gateway: RunPod's endpoint and worker APIs, the job store, and the workers of every endpoint in the config"],
    ['dev', 'the gateway for development: readable logs, and workers restarted when their files change'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .option('-c, --config <file>', 'the kiln config file', 'kiln.config.json')
      .option('-p, --port <port>', 'port to listen on (overrides the config; 0 picks a free one)')
      .option('--host <host>', 'address to bind (overrides the config; non-loopback needs API keys)')
      .action(async (options: GatewayCommandOptions) => {
        // Loaded only here: `kiln worker` must not pay for the gateway's dependencies at start-up.
        const commands = await import('./gateway-commands.ts');
        exitCode = await (name === 'serve' ? commands.serveCommand : commands.devCommand)(options, process.env);
      });
  }

  registerJobCommands(program, { stdout: process.stdout, stderr: process.stderr, env: process.env }, (code) => (exitCode = code));
  registerModelsCommands(program, { stdout: process.stdout, stderr: process.stderr, env: process.env }, (code) => (exitCode = code));

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    process.stderr.write(`kiln: ${err instanceof Error ? err.message : String(err)}\n`);
    exitCode = 1;
  }
  return exitCode;
}
