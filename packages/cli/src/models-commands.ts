import { Command, InvalidArgumentError, Option } from 'commander';
import type { CommandIo } from './terminal.ts';

/** Options every `kiln models` command takes. */
export interface ModelsCommonOptions {
  config?: string;
  volume?: string;
}

/** `kiln models pull` options. */
export interface PullCommandOptions extends ModelsCommonOptions {
  frozen?: boolean;
  update?: boolean;
  endpoint?: string;
  concurrency?: number;
}

/** `kiln models push` options. */
export interface PushCommandOptions extends ModelsCommonOptions {
  runpodVolume?: string;
  datacenter?: string;
  s3?: string;
  s3Endpoint?: string;
  region?: string;
  prefix?: string;
}

const USAGE_NOTES = `
Settings: the manifest is the "models" section of the config (--config, KILN_CONFIG, or the nearest
kiln.config.json); the volume is --volume, else KILN_VOLUME, else /runpod-volume when it exists, else
.kiln/volumes/models beside the config. HF_TOKEN and HF_ENDPOINT for Hugging Face; AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL_S3 for S3 (for a RunPod volume: your RunPod user
ID and an S3 API key secret).`;

/**
 * Adds `kiln models pull | ls | verify | gc | add | push` to the program. The commands load
 * `@kiln/models` only when they run, so other commands do not pay for it at start-up.
 *
 * @example
 * registerModelsCommands(program, { stdout: process.stdout, stderr: process.stderr, env: process.env }, (code) => (exitCode = code));
 */
export function registerModelsCommands(program: Command, io: CommandIo, setExitCode: (code: number) => void): void {
  const models = program
    .command('models')
    .description('model weights on volumes: pull them (verified, resumable), list, verify, clean up, install by hand, push to RunPod')
    .addHelpText('after', USAGE_NOTES);

  const common = (command: Command) =>
    command
      .option('-c, --config <file>', 'the kiln config file that holds the "models" manifest')
      .option('--volume <dir>', 'the volume folder (models go in <dir>/<name>)');

  const run = (action: (commands: typeof import('./models-actions.ts')) => Promise<number>) => async () => {
    const commands = await import('./models-actions.ts');
    setExitCode(await action(commands));
  };

  common(models.command('pull'))
    .description('download models onto the volume (all of the manifest by default): in parallel, resumable, sha256-checked; records them in kiln.lock')
    .argument('[names...]', 'models to pull')
    .option('--frozen', 'refuse any model kiln.lock does not pin as the manifest describes it; never write kiln.lock')
    .option('--update', 'resolve revisions again (e.g. a branch\'s newest commit) instead of kiln.lock\'s pins')
    .option('--endpoint <name>', 'pull the models listed by this endpoint of the config')
    .addOption(new Option('--concurrency <n>', 'files downloaded at once').argParser(positiveInteger))
    .action((names: string[], options: PullCommandOptions) => run((c) => c.pullCommand(names, options, io))());

  common(models.command('ls'))
    .description('list models and their state on the volume: missing, partial, verified or modified (by size and mtime; no hashing)')
    .argument('[names...]', 'models to list')
    .option('--json', 'print JSON')
    .action((names: string[], options: ModelsCommonOptions & { json?: boolean }) => run((c) => c.lsCommand(names, options, io))());

  common(models.command('verify'))
    .description('re-hash every file of the models and list the ones that differ from kiln.lock / the volume record')
    .argument('[names...]', 'models to verify')
    .action((names: string[], options: ModelsCommonOptions) => run((c) => c.verifyCommand(names, options, io))());

  common(models.command('gc'))
    .description('remove models the manifest no longer names, and stale files and partial downloads inside the others')
    .option('--dry-run', 'only print what would be removed')
    .action((options: ModelsCommonOptions & { dryRun?: boolean }) => run((c) => c.gcCommand(options, io))());

  common(models.command('add'))
    .description('install files you obtained yourself for a "manual" model (a file or a folder), checked against the manifest or kiln.lock')
    .argument('<name>', 'the manual model')
    .argument('<path>', 'the file or folder to install')
    .action((name: string, from: string, options: ModelsCommonOptions) => run((c) => c.addCommand(name, from, options, io))());

  common(models.command('push'))
    .description('upload verified models to a RunPod network volume (its S3-compatible API) or an S3 bucket, skipping files already there')
    .argument('[names...]', 'models to push (default: every model on the volume)')
    .option('--runpod-volume <id>', 'the RunPod network volume ID (needs --datacenter)')
    .option('--datacenter <id>', 'the volume\'s datacenter, e.g. EU-RO-1 (the S3 endpoint is https://s3api-<datacenter>.runpod.io)')
    .option('--s3 <url>', 'an S3 destination instead: s3://bucket[/prefix]')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint URL (overrides AWS_ENDPOINT_URL_S3 and the RunPod one)')
    .option('--region <region>', 'S3 region (default AWS_REGION, or the datacenter for RunPod)')
    .option('--prefix <path>', 'folder on the RunPod volume to push into (default: its root, as /runpod-volume sees it)')
    .action((names: string[], options: PushCommandOptions) => run((c) => c.pushCommand(names, options, io))());
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}
