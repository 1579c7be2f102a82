import path from 'node:path';
import {
  CONFIG_FILE_NAME,
  DATACENTER_PATTERN,
  formatBytes,
  loadManifestFile,
  ManifestError,
  ModelStore,
  readModelsSettings,
  type LoadedConfig,
  type ModelsSettings,
  type ModelStatus,
  type PushTarget,
} from '@kiln/models';
import type { ModelsCommonOptions, PullCommandOptions, PushCommandOptions } from './models-commands.ts';
import { PullProgress } from './models-progress.ts';
import type { CommandIo } from './terminal.ts';

interface Opened {
  readonly store: ModelStore;
  readonly settings: ModelsSettings;
  readonly config: LoadedConfig;
}

function open(options: ModelsCommonOptions & { concurrency?: number }, io: CommandIo): Opened {
  const settings = readModelsSettings(io.env, {
    ...(options.volume === undefined ? {} : { volume: options.volume }),
    ...(options.config === undefined ? {} : { config: options.config }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
  });
  if (settings.configFile === undefined) {
    throw new ManifestError([], { message: `no ${CONFIG_FILE_NAME} in ${process.cwd()} or its parents: pass --config FILE or set KILN_CONFIG` });
  }
  const config = loadManifestFile(settings.configFile);
  const store = ModelStore.fromSettings(settings, { manifest: config.manifest });
  return { store, settings, config };
}

/** Aborts on Ctrl-C (the first one): downloads stop and keep their `.part` files; the command then exits 130. */
function interruptible(io: CommandIo): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = () => {
    io.stderr.write('interrupted: partial downloads are kept; run the same command to resume\n');
    controller.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSignal);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onSignal) };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `kiln models pull [NAME…]`. */
export async function pullCommand(names: string[], options: PullCommandOptions, io: CommandIo): Promise<number> {
  const { store, settings, config } = open(options, io);
  const wanted = [...names];
  if (options.endpoint !== undefined) {
    const listed = config.endpointModels[options.endpoint];
    if (listed === undefined) {
      const known = Object.keys(config.endpointModels);
      throw new ManifestError([], { message: `no endpoint '${options.endpoint}' in ${config.file}${known.length > 0 ? `: endpoints are ${known.join(', ')}` : ''}` });
    }
    wanted.push(...listed);
  }
  if (wanted.length === 0 && Object.keys(config.manifest).length === 0) {
    io.stdout.write(`${config.file} declares no models\n`);
    return 0;
  }
  const progress = new PullProgress(io);
  const { signal, dispose } = interruptible(io);
  const started = performance.now();
  let report;
  try {
    report = await store.pull(wanted, {
      signal,
      ...(options.frozen === true ? { frozen: true } : {}),
      ...(options.update === true ? { update: true } : {}),
      writeLockfile: options.frozen !== true,
      onEvent: progress.onEvent,
    });
  } finally {
    progress.stop();
    dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  for (const r of report.results) {
    const detail =
      r.outcome === 'up-to-date'
        ? 'up to date'
        : `pulled ${r.filesDownloaded} file${r.filesDownloaded === 1 ? '' : 's'}, ${formatBytes(r.bytesTransferred)} fetched${r.bytesResumed > 0 ? ` (${formatBytes(r.bytesResumed)} resumed)` : ''}`;
    io.stdout.write(`${r.model}: ${detail}  ${r.path}\n`);
  }
  if (signal.aborted) return 130;
  for (const f of report.failures) io.stderr.write(`kiln: ${message(f.error)}\n`);
  const bytes = report.results.reduce((n, r) => n + r.bytesTransferred, 0);
  const pulled = report.results.filter((r) => r.outcome === 'pulled').length;
  const parts = [
    `${pulled} pulled (${formatBytes(bytes)} in ${seconds.toFixed(1)} s${bytes > 0 ? `, ${formatBytes(bytes / seconds)}/s` : ''})`,
    `${report.results.length - pulled} up to date`,
    ...(report.failures.length > 0 ? [`${report.failures.length} failed`] : []),
  ];
  io.stdout.write(`${parts.join(', ')}; volume ${settings.volume}${options.frozen === true || settings.lockfile === undefined ? '' : `; ${path.basename(settings.lockfile)} updated`}\n`);
  return report.failures.length > 0 ? 1 : 0;
}

/** `kiln models ls [NAME…]`. */
export async function lsCommand(names: string[], options: ModelsCommonOptions & { json?: boolean }, io: CommandIo): Promise<number> {
  const { store, settings, config } = open(options, io);
  const statuses = await store.status(names);
  if (options.json === true) {
    io.stdout.write(`${JSON.stringify({ volume: settings.volume, models: statuses.map((s) => ({ ...s, source: config.manifest[s.model]?.entry.source })) }, null, 2)}\n`);
    return 0;
  }
  const rows = statuses.map((s) => [s.model, s.state, sizeColumn(s), filesColumn(s), sourceColumn(config, s)]);
  io.stdout.write(table(['MODEL', 'STATE', 'SIZE', 'FILES', 'SOURCE'], rows));
  io.stdout.write(`volume ${settings.volume}\n`);
  return 0;
}

function sizeColumn(s: ModelStatus): string {
  if (s.bytesExpected === undefined) return s.bytesPresent > 0 ? `${formatBytes(s.bytesPresent)} (unknown total)` : '-';
  return s.state === 'verified' ? formatBytes(s.bytesExpected) : `${formatBytes(s.bytesPresent)} / ${formatBytes(s.bytesExpected)}`;
}

function filesColumn(s: ModelStatus): string {
  if (s.files.length === 0) return '-';
  const verified = s.files.filter((f) => f.state === 'verified').length;
  const modified = s.files.filter((f) => f.state === 'modified').length;
  return `${verified}/${s.files.length}${modified > 0 ? ` (${modified} modified)` : ''}`;
}

function sourceColumn(config: LoadedConfig, s: ModelStatus): string {
  const source = config.manifest[s.model]?.entry.source ?? '?';
  return s.revision === undefined ? source : `${source} (${s.revision.slice(0, 12)})`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`;
  return [header, ...rows].map(line).join('');
}

/** `kiln models verify [NAME…]`. */
export async function verifyCommand(names: string[], options: ModelsCommonOptions, io: CommandIo): Promise<number> {
  const { store, config } = open(options, io);
  const { signal, dispose } = interruptible(io);
  let reports;
  try {
    reports = await store.verify(names, { signal });
  } catch (error) {
    if (signal.aborted) return 130;
    throw error;
  } finally {
    dispose();
  }
  let failed = false;
  for (const report of reports) {
    if (report.state === 'unknown') {
      failed = true;
      const manual = config.manifest[report.model]?.source.kind === 'manual';
      io.stdout.write(`${report.model}: not on the volume (${manual ? `a manual model: kiln models add ${report.model} PATH` : 'never pulled, and kiln.lock does not list its files'})\n`);
      continue;
    }
    const bad = report.files.filter((f) => f.state !== 'ok');
    if (bad.length === 0) {
      io.stdout.write(`${report.model}: ${report.files.length} file${report.files.length === 1 ? '' : 's'} ok\n`);
      continue;
    }
    failed = true;
    io.stdout.write(`${report.model}: ${bad.length} of ${report.files.length} file${report.files.length === 1 ? '' : 's'} differ\n`);
    for (const f of bad) {
      io.stdout.write(f.state === 'missing' ? `  ${f.path}: missing (expected sha256 ${f.expected})\n` : `  ${f.path}: sha256 expected ${f.expected}, got ${f.actual}\n`);
    }
  }
  if (failed) io.stderr.write('kiln: verification failed: `kiln models pull` fetches the missing and differing files again\n');
  return failed ? 1 : 0;
}

/** `kiln models gc`. */
export async function gcCommand(options: ModelsCommonOptions & { dryRun?: boolean }, io: CommandIo): Promise<number> {
  const { store } = open(options, io);
  const report = await store.gc({ dryRun: options.dryRun === true });
  const verb = options.dryRun === true ? 'would remove' : 'removed';
  for (const r of report.removed) io.stdout.write(`${verb} ${r.path} (${formatBytes(r.bytes)}): ${r.why}\n`);
  for (const u of report.unmanaged) io.stdout.write(`left alone: ${path.join(store.volume, u)} (not installed by kiln)\n`);
  io.stdout.write(`${verb} ${report.removed.length} item${report.removed.length === 1 ? '' : 's'}, ${formatBytes(report.bytesFreed)}\n`);
  return 0;
}

/** `kiln models add NAME PATH`. */
export async function addCommand(name: string, from: string, options: ModelsCommonOptions, io: CommandIo): Promise<number> {
  const { store, settings } = open(options, io);
  const result = await store.add(name, from, { writeLockfile: true });
  io.stdout.write(`installed ${result.model}: ${result.files} file${result.files === 1 ? '' : 's'}, ${formatBytes(result.bytes)} in ${result.path}${settings.lockfile === undefined ? '' : `; ${path.basename(settings.lockfile)} updated`}\n`);
  return 0;
}

/** `kiln models push [NAME…] --runpod-volume ID --datacenter DC | --s3 s3://bucket/prefix`. */
export async function pushCommand(names: string[], options: PushCommandOptions, io: CommandIo): Promise<number> {
  const target = pushTarget(options);
  const { store } = open(options, io);
  const { signal, dispose } = interruptible(io);
  let report;
  try {
    report = await store.push(target, names, {
      signal,
      onEvent: (e) => {
        if (e.state === 'uploaded') io.stderr.write(`↑ ${e.model}/${e.path}  ${formatBytes(e.total)}\n`);
        else if (e.state === 'skipped') io.stderr.write(`= ${e.model}/${e.path}  already there\n`);
      },
    });
  } catch (error) {
    if (signal.aborted) return 130;
    throw error;
  } finally {
    dispose();
  }
  const where = target.kind === 'runpod-volume' ? `RunPod volume ${target.volumeId} (${target.datacenter}, ${report.endpoint})` : `s3://${report.bucket}${report.endpoint === undefined ? '' : ` at ${report.endpoint}`}`;
  io.stdout.write(
    `pushed to ${where}: ${report.uploaded.length} file${report.uploaded.length === 1 ? '' : 's'} uploaded (${formatBytes(report.bytesUploaded)}), ${report.skipped.length} already there${report.absent.length > 0 ? `; not on the local volume: ${report.absent.join(', ')}` : ''}\n`,
  );
  return 0;
}

function pushTarget(options: PushCommandOptions): PushTarget {
  const endpoint = options.s3Endpoint;
  if (endpoint !== undefined && !/^https?:\/\//.test(endpoint)) throw new ManifestError([{ key: '--s3-endpoint', value: endpoint, rule: 'must be an http(s) URL' }]);
  if ((options.runpodVolume === undefined) === (options.s3 === undefined)) {
    throw new ManifestError([], { message: 'push needs exactly one destination: --runpod-volume ID --datacenter DC, or --s3 s3://bucket[/prefix]' });
  }
  if (options.runpodVolume !== undefined) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(options.runpodVolume)) throw new ManifestError([{ key: '--runpod-volume', value: options.runpodVolume, rule: 'must be a network volume ID (letters and digits)' }]);
    if (options.datacenter === undefined) throw new ManifestError([{ key: '--datacenter', value: undefined, rule: 'the datacenter of the volume, e.g. EU-RO-1 (shown beside the volume in the RunPod console)' }]);
    if (!DATACENTER_PATTERN.test(options.datacenter)) throw new ManifestError([{ key: '--datacenter', value: options.datacenter, rule: 'must be a RunPod datacenter ID such as EU-RO-1 or US-KS-2' }]);
    return {
      kind: 'runpod-volume',
      volumeId: options.runpodVolume,
      datacenter: options.datacenter.toUpperCase(),
      ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
      ...(endpoint === undefined ? {} : { endpoint }),
    };
  }
  const match = /^s3:\/\/([A-Za-z0-9][A-Za-z0-9._-]*)(?:\/(.*))?$/.exec(options.s3!);
  if (match === null) throw new ManifestError([{ key: '--s3', value: options.s3, rule: 'must be s3://bucket or s3://bucket/prefix' }]);
  return {
    kind: 's3',
    bucket: match[1]!,
    prefix: match[2] ?? '',
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(options.region === undefined ? {} : { region: options.region }),
  };
}
