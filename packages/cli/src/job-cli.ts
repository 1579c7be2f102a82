import type { Command } from 'commander';
import type { CommandIo } from './terminal.ts';

/** Where `--url` points when neither it nor KILN_URL is given: `kiln dev`'s default address. */
export const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:8080';

/** The gateway a job command talks to, as given on the command line (KILN_URL / KILN_API_KEY otherwise). */
export interface ConnectionOptions {
  url?: string;
  apiKey?: string;
  json?: boolean;
}

function withConnection(command: Command): Command {
  return command
    .option('--url <url>', `the gateway's address (default: KILN_URL, else ${DEFAULT_GATEWAY_URL})`)
    .option('--api-key <key>', 'API key, sent as Bearer (default: KILN_API_KEY)')
    .option('--json', 'machine-readable JSON on stdout');
}

/**
 * Adds `kiln run`, `kiln jobs ls|status|cancel|retry` and `kiln logs` to `program`. Each command
 * resolves with its exit code through `done`; their code (and @kiln/client) loads only when one runs.
 *
 * @example
 * registerJobCommands(program, { stdout: process.stdout, stderr: process.stderr, env: process.env }, (code) => (exitCode = code));
 */
export function registerJobCommands(program: Command, io: CommandIo, done: (code: number) => void): void {
  const load = () => import('./job-commands.ts');
  const guarded = async (options: ConnectionOptions, action: (commands: Awaited<ReturnType<typeof load>>) => Promise<number>) => {
    const commands = await load();
    try {
      done(await action(commands));
    } catch (err) {
      io.stderr.write(`kiln: ${commands.describeCommandError(err, commands.resolveTarget(options, io.env))}\n`);
      done(1);
    }
  };

  withConnection(
    program
      .command('run')
      .description("submit a job with /run: progress on stderr, stream chunks and then the output on stdout; exit 1 unless it COMPLETED")
      .argument('<endpoint>', 'the endpoint id')
      .option('--input <json>', "the job's input, as JSON (a {\"input\": …} request body works too)")
      .option('--input-file <file>', "a JSON file with the job's input (e.g. test_input.json)")
      .option('--webhook <url>', 'http(s) URL that receives the final status')
      .option('--idempotency-key <key>', 'sent as Idempotency-Key: the same key and input return the same job'),
  ).action((endpoint: string, options) => guarded(options, (c) => c.runCommand(endpoint, options, io)));

  const jobs = program.command('jobs').description("list and manage an endpoint's jobs");
  withConnection(
    jobs
      .command('ls')
      .description('the newest jobs of an endpoint first, one page')
      .argument('<endpoint>', 'the endpoint id')
      .option('--status <states>', 'only these statuses, comma-separated (IN_QUEUE,IN_PROGRESS,COMPLETED,FAILED,CANCELLED,TIMED_OUT)')
      .option('--limit <n>', 'jobs per page (gateway default 50)')
      .option('--cursor <cursor>', 'the page after the one that printed this cursor'),
  ).action((endpoint: string, options) => guarded(options, (c) => c.listCommand(endpoint, options, io)));
  // status, cancel and retry name one job: `<endpoint> <id>`.
  const jobCommand = (name: string, description: string, action: (c: Awaited<ReturnType<typeof load>>, endpoint: string, id: string, options: ConnectionOptions) => Promise<number>) =>
    withConnection(jobs.command(name).description(description).argument('<endpoint>', 'the endpoint id').argument('<id>', 'the job id')).action(
      (endpoint: string, id: string, options: ConnectionOptions) => guarded(options, (c) => action(c, endpoint, id, options)),
    );
  jobCommand('status', "a job's status object", (c, endpoint, id, options) => c.statusCommand(endpoint, id, options, io));
  jobCommand('cancel', 'cancel a queued or running job', (c, endpoint, id, options) => c.transitionCommand('cancel', endpoint, id, options, io));
  jobCommand('retry', 'queue a FAILED or TIMED_OUT job again, same id', (c, endpoint, id, options) => c.transitionCommand('retry', endpoint, id, options, io));

  withConnection(
    program
      .command('logs')
      .description("what an endpoint's workers printed, oldest first")
      .argument('<endpoint>', 'the endpoint id')
      .option('--job <id>', "only this job's lines")
      .option('--worker <id>', "only this worker's lines")
      .option('-f, --follow', 'keep printing new lines until Ctrl-C'),
  ).action((endpoint: string, options) => guarded(options, (c) => c.logsCommand(endpoint, options, io)));
}
