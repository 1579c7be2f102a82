import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const SECOND_MS = 1000;
const DAY_MS = 24 * 60 * 60 * SECOND_MS;
const SEVEN_DAYS_MS = 7 * DAY_MS;

/** Endpoint names as RunPod-style path segments: lower-case letters, digits and dashes. */
export const ENDPOINT_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
const VOLUME_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
// The PostgreSQL store names a NOTIFY channel `kiln_jobs_available_<schema>`, and identifiers stop at 63 bytes.
const DATABASE_SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,42}$/;
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '::1', '[::1]']);

/** Defaults and bounds of the config, RunPod's where RunPod has one. Durations in ms unless named in seconds. */
export const CONFIG_LIMITS = {
  workersMin: { min: 0, max: 100, default: 0 },
  workersMax: { min: 1, max: 100, default: 3 },
  /** Seconds, as RunPod. */
  idleTimeout: { min: 1, max: 3600, default: 5 },
  scalerValue: { min: 1, max: 10_000, default: 4 },
  executionTimeoutMs: { min: 5000, max: SEVEN_DAYS_MS, default: 600_000 },
  ttlMs: { min: 10_000, max: SEVEN_DAYS_MS, default: DAY_MS },
  gpuCount: { min: 1, max: 16, default: 1 },
  port: { min: 0, max: 65_535, default: 8080 },
  retentionRunMs: { min: 1000, max: SEVEN_DAYS_MS, default: 30 * 60 * SECOND_MS },
  retentionRunsyncMs: { min: 1000, max: SEVEN_DAYS_MS, default: 60 * SECOND_MS },
  maxAttempts: { min: 1, max: 100, default: 3 },
  /** The SDK sleeps `interval // 1000` whole seconds: below 1000 it would hot-loop. */
  pingIntervalMs: { min: 1000, max: 600_000, default: 10_000 },
  pingTimeoutMs: { min: 1000, max: 3_600_000, default: 30_000 },
  /** Take/stop long-polls must end before the SDK's own 90 s cut. */
  takeHoldMs: { min: 0, max: 85_000, default: 30_000 },
  stopGraceMs: { min: 0, max: 600_000, default: 10_000 },
  /** Webhook tries in all; with the delays below, 8 tries span about 10 minutes. */
  webhookMaxAttempts: { min: 1, max: 100, default: 8 },
  /** A receiver that has not answered within this is cut off (and the call retried). */
  webhookTimeoutMs: { min: 1000, max: 300_000, default: 10_000 },
  /** Delay before the second try; each later delay is the previous one times the factor. */
  webhookInitialDelayMs: { min: 100, max: 3_600_000, default: 5000 },
  webhookBackoffFactor: { min: 1, max: 10, default: 2 },
} as const;

/** The environment variable that holds the webhook signing secret (it wins over `gateway.webhooks.secret`). */
export const WEBHOOK_SECRET_ENV = 'KILN_WEBHOOK_SECRET';
// Standard Webhooks: a key of 24 to 64 bytes, written as `whsec_` + base64.
const WEBHOOK_SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]+={0,2}$/;
const WEBHOOK_KEY_BYTES = { min: 24, max: 64 } as const;

/** Default SQLite file, relative to the config file's folder. */
export const DEFAULT_SQLITE_PATH = '.kiln/kiln.db';

/** How a worker process is started. */
export interface WorkerCommandConfig {
  /** Shell-free command line, e.g. `node dist/worker.js`. */
  readonly command: string;
  /** Absolute working directory (resolved against the config file's folder; defaults to it). */
  readonly cwd: string;
}

/** RunPod's scaler setting. */
export interface ScalerConfig {
  readonly type: 'QUEUE_DELAY' | 'REQUEST_COUNT';
  /** Seconds of queue delay (QUEUE_DELAY) or requests per worker (REQUEST_COUNT). */
  readonly value: number;
}

/** GPU requirements, in RunPod's naming. */
export interface GpuConfig {
  readonly types: readonly string[];
  readonly count: number;
}

/** A volume mounted into workers. */
export interface VolumeConfig {
  /** Where the worker sees it (RunPod: `/runpod-volume`). */
  readonly mountPath: string;
  /** Absolute local folder that backs it in local runs. */
  readonly local: string;
}

/** One endpoint, with every default applied. */
export interface EndpointConfig {
  readonly name: string;
  readonly worker: WorkerCommandConfig;
  readonly workersMin: number;
  readonly workersMax: number;
  /** Seconds an idle worker above `workersMin` lives on. */
  readonly idleTimeout: number;
  readonly scaler: ScalerConfig;
  readonly executionTimeoutMs: number;
  readonly ttlMs: number;
  readonly gpu?: GpuConfig;
  readonly volumes: Readonly<Record<string, VolumeConfig>>;
  /** Names of top-level `models` this endpoint's workers use. */
  readonly models: readonly string[];
  /** Worker environment as written: literals and `{ secret }` references (what a deploy sends as references). */
  readonly env: Readonly<Record<string, EnvValue>>;
  /** Worker environment with `{ secret }` references resolved from the environment given to the parser. */
  readonly resolvedEnv: Readonly<Record<string, string>>;
  /** Deployment settings passed through to RunPod as written. */
  readonly runpod: Readonly<Record<string, unknown>>;
}

/** A worker environment value: a literal, or a reference to a secret held in the environment. */
export type EnvValue = string | { readonly secret: string };

/** How job webhooks are signed and retried. */
export interface WebhookSettings {
  /** Standard Webhooks secret (`whsec_…`, from config or `KILN_WEBHOOK_SECRET`); unset ⇒ deliveries go out unsigned. */
  readonly secret?: string;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly initialDelayMs: number;
  readonly backoffFactor: number;
}

/** Settings of the gateway process itself. */
export interface GatewaySettings {
  readonly host: string;
  readonly port: number;
  /** Client API keys (config plus `KILN_API_KEYS`); empty ⇒ no client auth (loopback only). */
  readonly apiKeys: readonly string[];
  /** The database setting (`KILN_DATABASE_URL` wins over the file); a `postgres://` URL selects PostgreSQL. */
  readonly databaseUrl?: string;
  /** PostgreSQL schema that holds kiln's tables (the store's default, `kiln`, when unset); ignored for SQLite. */
  readonly databaseSchema?: string;
  /** Absolute SQLite file: from `databaseUrl` when that is not a PostgreSQL URL, else `.kiln/kiln.db` beside the config. */
  readonly sqlitePath: string;
  /** How long finished results are kept: `/run` jobs and `/runsync` jobs. */
  readonly retention: { readonly runMs: number; readonly runsyncMs: number };
  /** A job claimed this many times by workers that died is FAILED instead of requeued. */
  readonly maxAttempts: number;
  /** `RUNPOD_PING_INTERVAL` given to workers. */
  readonly pingIntervalMs: number;
  /** A worker holding jobs that has not pinged for this long is considered dead. */
  readonly pingTimeoutMs: number;
  /** How long job-take and job-stop long-polls are held before answering 204. */
  readonly takeHoldMs: number;
  readonly stopGraceMs: number;
  readonly webhooks: WebhookSettings;
}

/** The whole parsed config: deeply frozen, every path absolute. */
export interface GatewayConfig {
  /** Folder relative paths were resolved against (the config file's). */
  readonly baseDir: string;
  /** The config file, absolute, when it was loaded from one. */
  readonly file?: string;
  readonly endpoints: Readonly<Record<string, EndpointConfig>>;
  /** Model manifest entries, as written (the models package owns their schema). */
  readonly models: Readonly<Record<string, unknown>>;
  /** Price table by GPU type, as written. */
  readonly pricing: Readonly<Record<string, unknown>>;
  readonly gateway: GatewaySettings;
}

/** One problem with the config: the key path, the value found there and what is allowed. */
export interface ConfigIssue {
  /** Dotted path, e.g. `endpoints.tts.workersMax`; `(root)` for the whole document. */
  readonly key: string;
  /** The offending value (`undefined` when missing). */
  readonly value: unknown;
  /** What is allowed, e.g. `must be an integer from 1 to 100`. */
  readonly rule: string;
}

/**
 * The config cannot be used. The message lists every issue, one per line, as
 * `endpoints.tts.workersMax: 0 is not allowed: must be an integer from 1 to 100`.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The config file, when it came from one. */
  readonly file: string | undefined;
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[], options?: { file?: string; cause?: unknown; message?: string }) {
    const where = options?.file === undefined ? 'config' : `config ${options.file}`;
    const message = options?.message ?? `invalid ${where}:\n${issues.map((i) => `  - ${formatIssue(i)}`).join('\n')}`;
    super(message, { cause: options?.cause });
    this.file = options?.file;
    this.issues = issues;
  }
}

/** One issue as a line of text. */
export function formatIssue(issue: ConfigIssue): string {
  if (issue.value === undefined) return `${issue.key}: is required: ${issue.rule}`;
  return `${issue.key}: ${describeValue(issue.key, issue.value)} is not allowed: ${issue.rule}`;
}

function describeValue(key: string, value: unknown): string {
  // API keys and the webhook secret must not end up in logs through an error message.
  if (/^gateway\.(apiKeys|webhooks\.secret)\b/.test(key)) return '(hidden)';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

// ---------------------------------------------------------------------------------------------
// Schema. Every leaf states its rule in words, so that issues read as "must be …".

function int(bounds: { min: number; max: number }, unit?: string) {
  const rule = `must be an integer from ${bounds.min} to ${bounds.max}${unit === undefined ? '' : ` (${unit})`}`;
  return z.number({ error: rule }).int({ error: rule }).min(bounds.min, { error: rule }).max(bounds.max, { error: rule });
}

function numberInRange(bounds: { min: number; max: number }) {
  const rule = `must be a number from ${bounds.min} to ${bounds.max}`;
  return z.number({ error: rule }).min(bounds.min, { error: rule }).max(bounds.max, { error: rule });
}

function nonEmptyString(rule = 'must be a non-empty string') {
  return z.string({ error: rule }).min(1, { error: rule });
}

const looseRecord = z.record(z.string(), z.unknown(), { error: 'must be an object' });

const secretRefSchema = z.strictObject({
  secret: nonEmptyString('must be the name of an environment variable').regex(ENV_NAME_PATTERN, {
    error: 'must be the name of an environment variable (letters, digits, _)',
  }),
});

const envValueSchema = z.union([z.string(), secretRefSchema], {
  error: 'must be a string or { "secret": "NAME" }',
});

const endpointSchema = z.strictObject(
  {
    worker: z.strictObject(
      {
        command: nonEmptyString('must be a non-empty command line'),
        cwd: nonEmptyString('must be a folder path').optional(),
      },
      { error: 'must be an object { command, cwd? }' },
    ),
    workersMin: int(CONFIG_LIMITS.workersMin).default(CONFIG_LIMITS.workersMin.default),
    workersMax: int(CONFIG_LIMITS.workersMax).default(CONFIG_LIMITS.workersMax.default),
    idleTimeout: int(CONFIG_LIMITS.idleTimeout, 'seconds').default(CONFIG_LIMITS.idleTimeout.default),
    scaler: z
      .strictObject(
        {
          type: z.enum(['QUEUE_DELAY', 'REQUEST_COUNT'], { error: 'must be "QUEUE_DELAY" or "REQUEST_COUNT"' }).default('QUEUE_DELAY'),
          value: int(CONFIG_LIMITS.scalerValue).default(CONFIG_LIMITS.scalerValue.default),
        },
        { error: 'must be an object { type, value }' },
      )
      .default({ type: 'QUEUE_DELAY', value: CONFIG_LIMITS.scalerValue.default }),
    executionTimeoutMs: int(CONFIG_LIMITS.executionTimeoutMs, 'ms').default(CONFIG_LIMITS.executionTimeoutMs.default),
    ttlMs: int(CONFIG_LIMITS.ttlMs, 'ms').default(CONFIG_LIMITS.ttlMs.default),
    gpu: z
      .strictObject(
        {
          types: z.array(nonEmptyString('must be a GPU type name'), { error: 'must be an array of GPU type names' }).default([]),
          count: int(CONFIG_LIMITS.gpuCount).default(CONFIG_LIMITS.gpuCount.default),
        },
        { error: 'must be an object { types, count }' },
      )
      .optional(),
    volumes: z
      .record(
        z.string(),
        z.strictObject(
          {
            mountPath: nonEmptyString('must be an absolute path').startsWith('/', { error: 'must be an absolute path' }).default('/runpod-volume'),
            local: nonEmptyString('must be a folder path').optional(),
          },
          { error: 'must be an object { mountPath, local? }' },
        ),
        { error: 'must be an object of volumes' },
      )
      .default({}),
    models: z.array(nonEmptyString('must be a model name'), { error: 'must be an array of model names' }).default([]),
    env: z.record(z.string(), envValueSchema, { error: 'must be an object of environment variables' }).default({}),
    runpod: looseRecord.default({}),
  },
  { error: 'must be an object' },
);

const gatewaySchema = z.strictObject(
  {
    host: nonEmptyString('must be a host name or IP address').default('127.0.0.1'),
    port: int(CONFIG_LIMITS.port).default(CONFIG_LIMITS.port.default),
    apiKeys: z.array(nonEmptyString('must be a non-empty key'), { error: 'must be an array of keys' }).default([]),
    databaseUrl: nonEmptyString('must be a postgres:// URL or a SQLite file path').optional(),
    databaseSchema: z
      .string({ error: 'must be a PostgreSQL schema name' })
      .regex(DATABASE_SCHEMA_PATTERN, { error: 'must be a PostgreSQL schema name: lower-case letters, digits and _, not starting with a digit, at most 43 characters' })
      .optional(),
    retention: z
      .strictObject(
        {
          runMs: int(CONFIG_LIMITS.retentionRunMs, 'ms').default(CONFIG_LIMITS.retentionRunMs.default),
          runsyncMs: int(CONFIG_LIMITS.retentionRunsyncMs, 'ms').default(CONFIG_LIMITS.retentionRunsyncMs.default),
        },
        { error: 'must be an object { runMs, runsyncMs }' },
      )
      .default({ runMs: CONFIG_LIMITS.retentionRunMs.default, runsyncMs: CONFIG_LIMITS.retentionRunsyncMs.default }),
    maxAttempts: int(CONFIG_LIMITS.maxAttempts).default(CONFIG_LIMITS.maxAttempts.default),
    pingIntervalMs: int(CONFIG_LIMITS.pingIntervalMs, 'ms').default(CONFIG_LIMITS.pingIntervalMs.default),
    pingTimeoutMs: int(CONFIG_LIMITS.pingTimeoutMs, 'ms').default(CONFIG_LIMITS.pingTimeoutMs.default),
    takeHoldMs: int(CONFIG_LIMITS.takeHoldMs, 'ms').default(CONFIG_LIMITS.takeHoldMs.default),
    stopGraceMs: int(CONFIG_LIMITS.stopGraceMs, 'ms').default(CONFIG_LIMITS.stopGraceMs.default),
    webhooks: z
      .strictObject(
        {
          secret: z.string({ error: `must be a Standard Webhooks secret: whsec_ followed by base64` }).optional(),
          maxAttempts: int(CONFIG_LIMITS.webhookMaxAttempts).default(CONFIG_LIMITS.webhookMaxAttempts.default),
          timeoutMs: int(CONFIG_LIMITS.webhookTimeoutMs, 'ms').default(CONFIG_LIMITS.webhookTimeoutMs.default),
          initialDelayMs: int(CONFIG_LIMITS.webhookInitialDelayMs, 'ms').default(CONFIG_LIMITS.webhookInitialDelayMs.default),
          backoffFactor: numberInRange(CONFIG_LIMITS.webhookBackoffFactor).default(CONFIG_LIMITS.webhookBackoffFactor.default),
        },
        { error: 'must be an object { secret?, maxAttempts, timeoutMs, initialDelayMs, backoffFactor }' },
      )
      .default({
        maxAttempts: CONFIG_LIMITS.webhookMaxAttempts.default,
        timeoutMs: CONFIG_LIMITS.webhookTimeoutMs.default,
        initialDelayMs: CONFIG_LIMITS.webhookInitialDelayMs.default,
        backoffFactor: CONFIG_LIMITS.webhookBackoffFactor.default,
      }),
  },
  { error: 'must be an object' },
);

const configSchema = z.strictObject(
  {
    $schema: z.string().optional(),
    endpoints: z.record(z.string(), endpointSchema, { error: 'must be an object of endpoints' }).default({}),
    models: looseRecord.default({}),
    pricing: looseRecord.default({}),
    gateway: gatewaySchema.default(gatewaySchema.parse({})),
  },
  { error: 'must be a JSON object' },
);

type RawConfig = z.output<typeof configSchema>;

/** Messages for issues whose schema did not state its own rule. */
function fallbackRule(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type') {
    const expected = String(issue.expected);
    return `must be ${/^[aeiou]/.test(expected) ? 'an' : 'a'} ${expected}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------

/** Where `parseConfig` resolves relative paths and reads secrets and overrides. */
export interface ParseConfigOptions {
  /** Folder of the config file; relative paths are resolved against it. */
  baseDir: string;
  /** The environment: `{ secret }` values, `KILN_API_KEYS` (comma list) and `KILN_DATABASE_URL` come from here. */
  env: Readonly<Record<string, string | undefined>>;
  /** The file the value was read from, when there is one (workers get it as `KILN_CONFIG`). */
  file?: string;
}

/**
 * Validates a parsed `kiln.config.json` value, applies RunPod's defaults, resolves paths and
 * secrets, and returns a deeply frozen config. Throws `ConfigError` listing every issue.
 *
 * @example
 * const config = parseConfig({ endpoints: { tts: { worker: { command: 'node worker.js' } } } }, { baseDir: '/app', env: process.env });
 * config.endpoints.tts?.workersMax; // 3
 */
export function parseConfig(value: unknown, options: ParseConfigOptions): GatewayConfig {
  let input: unknown;
  try {
    // A private copy: the result is frozen, and freezing must not reach the caller's objects.
    input = structuredClone(value);
  } catch (cause) {
    throw new ConfigError([{ key: '(root)', value: '(not serialisable)', rule: 'must be plain JSON data' }], { cause });
  }
  const nameIssues = endpointNameIssues(input);
  const parsed = configSchema.safeParse(input, { error: fallbackRule });
  // Every problem at once: names are checked even when the schema already failed.
  if (!parsed.success) throw new ConfigError([...nameIssues, ...parsed.error.issues.flatMap((issue) => toConfigIssues(issue, input))]);
  const raw = parsed.data;
  const issues: ConfigIssue[] = [...nameIssues];
  const baseDir = path.resolve(options.baseDir);

  const endpoints: Record<string, EndpointConfig> = {};
  for (const [name, endpoint] of Object.entries(raw.endpoints)) {
    if (!ENDPOINT_NAME_PATTERN.test(name)) continue;
    endpoints[name] = resolveEndpoint(name, endpoint, raw, baseDir, options.env, issues);
  }

  const gateway = resolveGateway(raw.gateway, baseDir, options.env, issues);
  if (issues.length > 0) throw new ConfigError(issues);
  return deepFreeze({ baseDir, ...(options.file === undefined ? {} : { file: path.resolve(options.file) }), endpoints, models: raw.models, pricing: raw.pricing, gateway });
}

function endpointNameIssues(input: unknown): ConfigIssue[] {
  const endpoints = typeof input === 'object' && input !== null ? (input as Record<string, unknown>)['endpoints'] : undefined;
  if (typeof endpoints !== 'object' || endpoints === null) return [];
  return Object.keys(endpoints)
    .filter((name) => !ENDPOINT_NAME_PATTERN.test(name))
    .map((name) => ({ key: `endpoints.${name}`, value: name, rule: 'endpoint names must match ^[a-z0-9][a-z0-9-]{0,63}$ (lower-case letters, digits, dashes)' }));
}

/**
 * Reads, validates and freezes a config file (JSON, `//` and `/* *\/` comments allowed).
 * Relative paths resolve against the file's folder.
 *
 * @example
 * const config = loadConfig('kiln.config.json', process.env);
 */
export function loadConfig(
  file: string,
  env: Readonly<Record<string, string | undefined>>,
  overrides: { host?: string; port?: number } = {},
): GatewayConfig {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (cause) {
    throw new ConfigError([], { file: absolute, cause, message: `cannot read config ${absolute}: ${(cause as Error).message}` });
  }
  let value: unknown;
  try {
    value = JSON.parse(stripJsonComments(text));
  } catch (cause) {
    throw new ConfigError([], { file: absolute, cause, message: `config ${absolute} is not valid JSON: ${(cause as Error).message}` });
  }
  if ((overrides.host !== undefined || overrides.port !== undefined) && typeof value === 'object' && value !== null) {
    // Command-line overrides go through the same validation as the file (a non-loopback host still needs keys).
    const raw = value as Record<string, unknown>;
    const gateway = typeof raw['gateway'] === 'object' && raw['gateway'] !== null ? { ...(raw['gateway'] as Record<string, unknown>) } : {};
    if (overrides.host !== undefined) gateway['host'] = overrides.host;
    if (overrides.port !== undefined) gateway['port'] = overrides.port;
    value = { ...raw, gateway };
  }
  try {
    return parseConfig(value, { baseDir: path.dirname(absolute), env, file: absolute });
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(error.issues, { file: absolute, cause: error });
    throw error;
  }
}

function resolveEndpoint(
  name: string,
  endpoint: RawConfig['endpoints'][string],
  raw: RawConfig,
  baseDir: string,
  env: Readonly<Record<string, string | undefined>>,
  issues: ConfigIssue[],
): EndpointConfig {
  const key = `endpoints.${name}`;
  if (endpoint.workersMin > endpoint.workersMax) {
    issues.push({ key: `${key}.workersMin`, value: endpoint.workersMin, rule: `must be at most workersMax (${endpoint.workersMax})` });
  }
  endpoint.models.forEach((model, index) => {
    if (!Object.hasOwn(raw.models, model)) {
      issues.push({ key: `${key}.models[${index}]`, value: model, rule: 'must name a model declared under the top-level "models"' });
    }
  });

  const volumes: Record<string, VolumeConfig> = {};
  for (const [volume, settings] of Object.entries(endpoint.volumes)) {
    if (!VOLUME_NAME_PATTERN.test(volume)) {
      issues.push({ key: `${key}.volumes.${volume}`, value: volume, rule: 'volume names must be letters, digits, _ or - (at most 64)' });
      continue;
    }
    volumes[volume] = { mountPath: settings.mountPath, local: path.resolve(baseDir, settings.local ?? `.kiln/volumes/${volume}`) };
  }

  const resolvedEnv: Record<string, string> = {};
  for (const [variable, setting] of Object.entries(endpoint.env)) {
    if (!ENV_NAME_PATTERN.test(variable)) {
      issues.push({ key: `${key}.env.${variable}`, value: variable, rule: 'environment variable names must be letters, digits and _, not starting with a digit' });
      continue;
    }
    if (typeof setting === 'string') {
      resolvedEnv[variable] = setting;
      continue;
    }
    const secret = env[setting.secret];
    if (secret === undefined) {
      issues.push({ key: `${key}.env.${variable}`, value: setting, rule: `secret ${setting.secret} is not set in the environment` });
      continue;
    }
    resolvedEnv[variable] = secret;
  }

  const config: EndpointConfig = {
    name,
    worker: { command: endpoint.worker.command, cwd: path.resolve(baseDir, endpoint.worker.cwd ?? '.') },
    workersMin: endpoint.workersMin,
    workersMax: endpoint.workersMax,
    idleTimeout: endpoint.idleTimeout,
    scaler: endpoint.scaler,
    executionTimeoutMs: endpoint.executionTimeoutMs,
    ttlMs: endpoint.ttlMs,
    volumes,
    models: endpoint.models,
    env: endpoint.env,
    resolvedEnv,
    runpod: endpoint.runpod,
  };
  return endpoint.gpu === undefined ? config : { ...config, gpu: endpoint.gpu };
}

function resolveGateway(
  raw: RawConfig['gateway'],
  baseDir: string,
  env: Readonly<Record<string, string | undefined>>,
  issues: ConfigIssue[],
): GatewaySettings {
  const fromEnv = (env.KILN_API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '');
  const apiKeys = [...new Set([...raw.apiKeys, ...fromEnv])];
  if (apiKeys.length === 0 && !isLoopbackHost(raw.host)) {
    issues.push({
      key: 'gateway.host',
      value: raw.host,
      rule: 'a non-loopback bind needs API keys: set gateway.apiKeys or KILN_API_KEYS, or bind 127.0.0.1',
    });
  }

  if (raw.pingIntervalMs >= raw.pingTimeoutMs) {
    issues.push({ key: 'gateway.pingIntervalMs', value: raw.pingIntervalMs, rule: `must be less than gateway.pingTimeoutMs (${raw.pingTimeoutMs})` });
  }

  const envUrl = env.KILN_DATABASE_URL;
  const databaseUrl = envUrl !== undefined && envUrl !== '' ? envUrl : raw.databaseUrl;
  const settings: GatewaySettings = {
    host: raw.host,
    port: raw.port,
    apiKeys,
    sqlitePath: sqlitePathOf(databaseUrl, baseDir),
    retention: raw.retention,
    maxAttempts: raw.maxAttempts,
    pingIntervalMs: raw.pingIntervalMs,
    pingTimeoutMs: raw.pingTimeoutMs,
    takeHoldMs: raw.takeHoldMs,
    stopGraceMs: raw.stopGraceMs,
    webhooks: resolveWebhooks(raw.webhooks, env, issues),
  };
  return {
    ...settings,
    ...(databaseUrl === undefined ? {} : { databaseUrl }),
    ...(raw.databaseSchema === undefined ? {} : { databaseSchema: raw.databaseSchema }),
  };
}

function resolveWebhooks(
  raw: RawConfig['gateway']['webhooks'],
  env: Readonly<Record<string, string | undefined>>,
  issues: ConfigIssue[],
): WebhookSettings {
  const { secret: fromFile, ...retries } = raw;
  const fromEnv = env[WEBHOOK_SECRET_ENV];
  const secret = fromEnv !== undefined && fromEnv !== '' ? fromEnv : fromFile;
  if (secret === undefined) return retries;
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  if (!WEBHOOK_SECRET_PATTERN.test(secret) || key.length < WEBHOOK_KEY_BYTES.min || key.length > WEBHOOK_KEY_BYTES.max) {
    const source = secret === fromEnv ? ` (read from ${WEBHOOK_SECRET_ENV})` : '';
    issues.push({
      key: 'gateway.webhooks.secret',
      value: secret,
      rule: `must be whsec_ followed by the base64 of a ${WEBHOOK_KEY_BYTES.min}- to ${WEBHOOK_KEY_BYTES.max}-byte key${source}, e.g. whsec_$(openssl rand -base64 32)`,
    });
  }
  return { ...retries, secret };
}

/** Whether a database setting names PostgreSQL (`postgres://…` or `postgresql://…`). */
export function isPostgresUrl(url: string | undefined): boolean {
  return url !== undefined && /^postgres(ql)?:\/\//i.test(url);
}

/** The SQLite file a database setting names: `sqlite:PATH`, `file:PATH` or a bare path; the default when unset or PostgreSQL. */
function sqlitePathOf(url: string | undefined, baseDir: string): string {
  if (url === undefined || isPostgresUrl(url)) return path.resolve(baseDir, DEFAULT_SQLITE_PATH);
  return path.resolve(baseDir, url.replace(/^(sqlite|file):(\/\/)?/i, ''));
}

/** Whether binding `host` keeps the gateway reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host.toLowerCase()) || /^127(\.\d{1,3}){3}$/.test(host);
}

function toConfigIssues(issue: z.core.$ZodIssue, input: unknown): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    const parent = valueAt(input, issue.path);
    const allowed = 'is not a known setting (check its spelling)';
    return issue.keys.map((k) => ({
      key: formatPath([...issue.path, k]),
      value: isObject(parent) ? parent[k] : undefined,
      rule: allowed,
    }));
  }
  return [{ key: formatPath(issue.path), value: valueAt(input, issue.path), rule: issue.message }];
}

function formatPath(segments: readonly PropertyKey[]): string {
  if (segments.length === 0) return '(root)';
  return segments.reduce<string>((out, s) => (typeof s === 'number' ? `${out}[${s}]` : out === '' ? String(s) : `${out}.${String(s)}`), '');
}

function valueAt(input: unknown, segments: readonly PropertyKey[]): unknown {
  let current = input;
  for (const s of segments) {
    if (Array.isArray(current) && typeof s === 'number') current = current[s];
    else if (isObject(current) && typeof s === 'string' && Object.hasOwn(current, s)) current = current[s];
    else return undefined;
  }
  return current;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Removes `//` and `/* *\/` comments outside strings, so commented configs (as in DESIGN.md) load. */
export function stripJsonComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      i++;
      out += text.slice(start, i);
    } else if (ch === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      // Keep line breaks so JSON.parse positions still point at the right line.
      out += text.slice(i, end === -1 ? text.length : end + 2).replace(/[^\n]/g, ' ');
      i = end === -1 ? text.length : end + 2;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
