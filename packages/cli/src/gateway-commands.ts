import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { dashboardDir } from '@kiln/dashboard';
import { Gateway, loadConfig, type GatewayConfig, type GatewayLogger, type LogLine } from '@kiln/gateway';
import { readModelsSettings, type ModelsSettings, type PullEvent } from '@kiln/models';
import { createModelsAccess, type DashboardModels } from './dashboard-models.ts';
import { describeDashboard, describeEndpoints, EMPTY_REQUEST } from './dev-endpoints.ts';
import { checkEndpointModels, formatModelCheck, type ModelCheck } from './dev-models.ts';
import { PullProgress } from './models-progress.ts';
import { painter, parseJsonLogLine, useColor } from './terminal.ts';

/** Options shared by `kiln serve` and `kiln dev`. */
export interface GatewayCommandOptions {
  config: string;
  port?: string;
  host?: string;
}

/** `kiln serve` logs: one JSON line per message on stderr, as the gateway's own. */
const jsonLogger: GatewayLogger = {
  info: (message, fields) => void process.stderr.write(`${JSON.stringify({ level: 'info', time: Date.now(), message, ...fields })}\n`),
  warn: (message, fields) => void process.stderr.write(`${JSON.stringify({ level: 'warn', time: Date.now(), message, ...fields })}\n`),
  error: (message, fields) => void process.stderr.write(`${JSON.stringify({ level: 'error', time: Date.now(), message, ...fields })}\n`),
};

/**
 * `kiln serve`: the long-running gateway, JSON logs on stderr, the dashboard at `/` (its models
 * page backed by the config's models volume). Once it listens, the models its
 * endpoints list are pulled or verified (one log line each; a model that cannot be obtained is
 * logged as a warning and the gateway keeps serving). Resolves when it stopped (SIGTERM/SIGINT).
 */
export async function serveCommand(options: GatewayCommandOptions, env: Record<string, string | undefined>): Promise<number> {
  const config = loadConfigWithOverrides(options, env);
  const models = openModels(config, options, env, jsonLogger);
  const gateway = new Gateway(config, { log: jsonLogger, dashboardDir, ...(models.access === undefined ? {} : { models: models.access }) });
  return runUntilSignal(
    gateway,
    'serve',
    async (url, signal) => {
      process.stderr.write(`kiln serve: listening on ${url} (endpoints: ${Object.keys(config.endpoints).join(', ')})\n`);
      const dashboard = describeDashboard(config, url, dashboardDir);
      process.stderr.write(`kiln serve: dashboard ${dashboard.url}${dashboard.note === undefined ? '' : ` (${dashboard.note})`}\n`);
      const checks = await checkModelsReporting(config, models, signal, jsonLogger, undefined);
      process.stderr.write(`kiln serve: ready${modelsSummary(checks)}\n`);
    },
    () => models.access?.close(),
  );
}

/**
 * `kiln dev`: the same gateway with human-readable logs (worker lines prefixed by worker id), and
 * an endpoint's workers restarted when files in its folder change. It prints the URL and the
 * dashboard's as soon as it listens, then pulls or verifies the models the endpoints list
 * (progress bars on a terminal, one line per model otherwise; workers that start meanwhile wait
 * on the model's lock in `ensure()`; the dashboard shows the pull and joins it),
 * then each endpoint's URL with a ready-to-paste curl, and a `ready` line.
 */
export async function devCommand(options: GatewayCommandOptions, env: Record<string, string | undefined>): Promise<number> {
  const config = loadConfigWithOverrides(options, env);
  const paint = painter(useColor(process.stderr, env));
  const time = () => new Date().toISOString().slice(11, 19);
  const log: GatewayLogger = {
    info: (m: string) => process.stderr.write(`${paint('gray', time())} ${paint('cyan', 'gateway')}  ${m}\n`),
    warn: (m: string) => process.stderr.write(`${paint('gray', time())} ${paint('yellow', 'gateway')}  ${m}\n`),
    error: (m: string) => process.stderr.write(`${paint('gray', time())} ${paint('red', 'gateway')}  ${m}\n`),
  };
  const onWorkerLog = (line: LogLine) => process.stderr.write(`${paint('gray', time())} ${paint('magenta', line.workerId)}  ${humanWorkerLine(line)}\n`);
  const models = openModels(config, options, env, log);
  const gateway = new Gateway(config, { log, onWorkerLog, dashboardDir, ...(models.access === undefined ? {} : { models: models.access }) });
  const watchers: FSWatcher[] = [];
  const restartTimers = new Map<string, NodeJS.Timeout>();
  const started = runUntilSignal(gateway, 'dev', async (url, signal) => {
    process.stderr.write(`kiln dev: listening on ${url} (endpoints: ${Object.keys(config.endpoints).join(', ')})\n`);
    // Before the models are pulled: the dashboard shows their progress.
    const dashboard = describeDashboard(config, url, dashboardDir);
    process.stderr.write(`  ${paint('bold', 'dashboard')}  ${dashboard.url}${dashboard.note === undefined ? '' : paint('yellow', `  (${dashboard.note})`)}\n`);
    startWatching();
    const checks = await checkModelsReporting(config, models, signal, log, process.stderr.isTTY === true ? env : undefined);
    process.stderr.write(`\n${paint('bold', 'endpoints')} (RunPod's API: /run, /runsync, /status/<id>, /stream/<id>, /cancel/<id>, /health)\n`);
    const usages = await describeEndpoints(config, url);
    const width = Math.max(...usages.map((u) => u.endpoint.length));
    for (const usage of usages) {
      const missing = checks.filter((c) => (c.state === 'manual' || c.state === 'failed') && c.endpoints.includes(usage.endpoint)).map((c) => c.model);
      process.stderr.write(`  ${paint('cyan', usage.endpoint.padEnd(width))}  ${usage.url}${missing.length > 0 ? paint('yellow', `  (jobs will fail until ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} installed)`) : ''}\n`);
      process.stderr.write(`    ${usage.curl}\n`);
      if (usage.problem !== undefined) process.stderr.write(`    ${paint('yellow', `(${usage.problem}: the curl sends ${EMPTY_REQUEST})`)}\n`);
    }
    process.stderr.write(`kiln dev: ready${modelsSummary(checks)}; Ctrl-C stops the workers and the gateway\n`);
  }, () => models.access?.close());
  function startWatching(): void {
    for (const [endpoint, settings] of Object.entries(config.endpoints)) {
      try {
        const watcher = watch(settings.worker.cwd, { recursive: true }, (_event, file) => {
          if (file && /(^|[/\\])(node_modules|\.git|\.kiln|__pycache__)([/\\]|$)/.test(String(file))) return;
          clearTimeout(restartTimers.get(endpoint));
          restartTimers.set(
            endpoint,
            setTimeout(() => {
              log.info(`${path.join(settings.worker.cwd, String(file ?? ''))} changed: restarting ${endpoint}'s workers`);
              void gateway.restartWorkers(endpoint);
            }, 200),
          );
        });
        watchers.push(watcher);
      } catch (err) {
        log.warn(`not watching ${settings.worker.cwd}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  const code = await started;
  for (const w of watchers) w.close();
  for (const t of restartTimers.values()) clearTimeout(t);
  return code;
}

function loadConfigWithOverrides(options: GatewayCommandOptions, env: Record<string, string | undefined>) {
  return loadConfig(path.resolve(options.config), env, {
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.port !== undefined ? { port: Number(options.port) } : {}),
  });
}

/** The models settings of this process, and the dashboard's view of the volume built on them. */
interface OpenedModels {
  /** The settings, or why they could not be read (bad `HF_TOKEN`, …). */
  readonly settings: ModelsSettings | Error;
  /** Absent when the settings or the config's `models` section are unusable: the admin API's model routes then answer 404. */
  readonly access: DashboardModels | undefined;
}

/** Reads the models settings once, and opens the dashboard's models access on them. Never throws: problems are logged. */
function openModels(config: GatewayConfig, options: GatewayCommandOptions, env: Record<string, string | undefined>, log: GatewayLogger): OpenedModels {
  let settings: ModelsSettings;
  try {
    settings = readModelsSettings(env, { config: path.resolve(options.config) });
  } catch (error) {
    const problem = error instanceof Error ? error : new Error(String(error));
    if (Object.keys(config.models).length > 0) log.warn(`models not shown in the dashboard: ${problem.message}`);
    return { settings: problem, access: undefined };
  }
  try {
    return { settings, access: createModelsAccess({ config, settings }) };
  } catch (error) {
    log.warn(`models not shown in the dashboard: ${error instanceof Error ? error.message : String(error)}`);
    return { settings, access: undefined };
  }
}

/**
 * Checks the endpoints' models and reports each one through `log` (warnings for models that cannot
 * be obtained); with `barsEnv`, progress bars on the terminal. The pull runs as the dashboard's
 * pull of the models on its volume, so a click on "pull" meanwhile joins it. Never throws: a broken
 * models section or unusable models settings is logged, and the gateway keeps running.
 */
async function checkModelsReporting(
  config: GatewayConfig,
  models: OpenedModels,
  signal: AbortSignal,
  log: GatewayLogger,
  barsEnv: Record<string, string | undefined> | undefined,
): Promise<ModelCheck[]> {
  if (!Object.values(config.endpoints).some((e) => e.models.length > 0)) return [];
  const progress = barsEnv === undefined ? undefined : new PullProgress({ stdout: process.stdout, stderr: process.stderr, env: barsEnv });
  let checks: ModelCheck[];
  try {
    const { settings, access } = models;
    if (settings instanceof Error) throw settings;
    const check = (onEvent?: (event: PullEvent) => void) =>
      checkEndpointModels(config, {
        settings,
        signal,
        ...(progress === undefined && onEvent === undefined
          ? {}
          : {
              onEvent: (event: PullEvent) => {
                progress?.onEvent(event);
                onEvent?.(event);
              },
            }),
      });
    checks = access === undefined ? await check() : await access.track(modelsOnVolume(config, settings, access.volume), check);
  } catch (error) {
    if (!signal.aborted) log.warn(`models not checked: ${error instanceof Error ? error.message : String(error)}`);
    return [];
  } finally {
    progress?.stop();
  }
  for (const check of checks) {
    const fields = { model: check.model, state: check.state, endpoints: check.endpoints, path: check.path };
    if (check.state === 'manual' || check.state === 'failed') log.warn(`model ${formatModelCheck(check)}`, fields);
    else log.info(`model ${formatModelCheck(check)}`, fields);
  }
  return checks;
}

/** The models that endpoints using `volume` for their models list (the others are pulled onto their own volume). */
function modelsOnVolume(config: GatewayConfig, settings: ModelsSettings, volume: string): string[] {
  const names = new Set<string>();
  for (const endpoint of Object.values(config.endpoints)) {
    if (path.resolve(endpoint.volumes['models']?.local ?? settings.volume) !== volume) continue;
    for (const model of endpoint.models) names.add(model);
  }
  return [...names];
}

function modelsSummary(checks: readonly ModelCheck[]): string {
  if (checks.length === 0) return '';
  const bad = checks.filter((c) => c.state === 'manual' || c.state === 'failed').length;
  return ` (models: ${checks.length - bad} ready${bad > 0 ? `, ${bad} missing` : ''})`;
}

/**
 * Starts the gateway, runs `afterListen` (model checks, the endpoint list) while listening, and
 * stops on SIGINT/SIGTERM, which also aborts `afterListen`'s signal (a pull in progress keeps its
 * partial files for the next start); `beforeStop` runs just before the gateway stops.
 */
async function runUntilSignal(
  gateway: Gateway,
  mode: 'dev' | 'serve',
  afterListen: (url: string, signal: AbortSignal) => Promise<void>,
  beforeStop: () => void = () => {},
): Promise<number> {
  const url = await gateway.start();
  const stopping = new AbortController();
  const stopped = new Promise<void>((resolve) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      stopping.abort(new Error('stopping'));
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await Promise.race([
    afterListen(url, stopping.signal).catch((error: unknown) => {
      if (!stopping.signal.aborted) process.stderr.write(`kiln ${mode}: ${error instanceof Error ? error.message : String(error)}\n`);
    }),
    stopped,
  ]);
  await stopped;
  process.stderr.write('kiln: stopping workers and the gateway…\n');
  beforeStop();
  await gateway.stop();
  return 0;
}

/** One worker log line for people: JSON lines from @kiln/worker or runpod-python become `LEVEL [job] message`. */
export function humanWorkerLine(line: LogLine): string {
  const parsed = parseJsonLogLine(line.line);
  if (parsed !== undefined) return `${parsed.level}${parsed.jobId === undefined ? '' : ` [${parsed.jobId}]`} ${parsed.message}`;
  return line.stream === 'stderr' ? `stderr: ${line.line}` : line.line;
}
