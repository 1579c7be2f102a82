import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { styleText } from 'node:util';
import { Gateway, loadConfig, type GatewayLogger, type LogLine } from '@kiln/gateway';

/** Options shared by `kiln serve` and `kiln dev`. */
export interface GatewayCommandOptions {
  config: string;
  port?: string;
  host?: string;
}

const useColor = (env: Record<string, string | undefined>) => env['NO_COLOR'] === undefined && process.stderr.isTTY === true;

/** `kiln serve`: the long-running gateway, JSON logs on stderr. Resolves when it stopped (SIGTERM/SIGINT). */
export async function serveCommand(options: GatewayCommandOptions, env: Record<string, string | undefined>): Promise<number> {
  const gateway = new Gateway(loadConfigWithOverrides(options, env));
  return runUntilSignal(gateway, false);
}

/**
 * `kiln dev`: the same gateway with human-readable logs (worker lines prefixed by worker id), and
 * an endpoint's workers restarted when files in its folder change.
 */
export async function devCommand(options: GatewayCommandOptions, env: Record<string, string | undefined>): Promise<number> {
  const config = loadConfigWithOverrides(options, env);
  const color = useColor(env);
  const paint = (style: Parameters<typeof styleText>[0], text: string) => (color ? styleText(style, text) : text);
  const time = () => new Date().toISOString().slice(11, 19);
  const log: GatewayLogger = {
    info: (m: string) => process.stderr.write(`${paint('gray', time())} ${paint('cyan', 'gateway')}  ${m}\n`),
    warn: (m: string) => process.stderr.write(`${paint('gray', time())} ${paint('yellow', 'gateway')}  ${m}\n`),
    error: (m: string) => process.stderr.write(`${paint('gray', time())} ${paint('red', 'gateway')}  ${m}\n`),
  };
  const onWorkerLog = (line: LogLine) => process.stderr.write(`${paint('gray', time())} ${paint('magenta', line.workerId)}  ${humanWorkerLine(line)}\n`);
  const gateway = new Gateway(config, { log, onWorkerLog });
  const watchers: FSWatcher[] = [];
  const restartTimers = new Map<string, NodeJS.Timeout>();
  const started = runUntilSignal(gateway, true, () => {
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
  });
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

async function runUntilSignal(gateway: Gateway, dev: boolean, onStarted?: () => void): Promise<number> {
  const url = await gateway.start();
  const endpoints = Object.keys(gateway.config.endpoints);
  process.stderr.write(`kiln ${dev ? 'dev' : 'serve'}: listening on ${url} (endpoints: ${endpoints.join(', ')})\n`);
  if (endpoints[0]) {
    process.stderr.write(`  try: curl -s -X POST ${url}/v2/${endpoints[0]}/runsync -H 'content-type: application/json' -d '{"input":{"message":"hello"}}'\n`);
  }
  onStarted?.();
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  process.stderr.write('kiln: stopping workers and the gateway…\n');
  await gateway.stop();
  return 0;
}

/** One worker log line for people: JSON lines from @kiln/worker or runpod-python become `LEVEL [job] message`. */
export function humanWorkerLine(line: LogLine): string {
  const text = line.line;
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as Record<string, unknown>;
      if (typeof parsed['message'] === 'string') {
        const level = typeof parsed['level'] === 'string' ? parsed['level'] : 'INFO';
        const job = typeof parsed['requestId'] === 'string' ? ` [${parsed['requestId']}]` : '';
        return `${level}${job} ${parsed['message']}`;
      }
    } catch {
      // not JSON after all: shown as it is
    }
  }
  return line.stream === 'stderr' ? `stderr: ${text}` : text;
}
