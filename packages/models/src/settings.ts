import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ManifestError, type ManifestIssue } from './errors.ts';
import { LOCKFILE_NAME } from './lockfile.ts';

/** RunPod mounts a network volume here in serverless workers. */
export const RUNPOD_VOLUME = '/runpod-volume';
/** The local volume folder, relative to the config's folder (the gateway's default for a volume named `models`). */
export const LOCAL_VOLUME = '.kiln/volumes/models';
/** The config file looked for from the current folder upwards. */
export const CONFIG_FILE_NAME = 'kiln.config.json';
/** Hugging Face's hub. */
export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** Files downloaded at once, and the bounds of that setting. */
export const CONCURRENCY = { min: 1, max: 32, default: 4 } as const;

/** How to reach S3 (and S3-compatible stores such as RunPod's network volume API). */
export interface S3Settings {
  /** e.g. `https://s3api-eu-ro-1.runpod.io` (`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`); AWS itself when unset. */
  readonly endpoint: string | undefined;
  /** `AWS_REGION` / `AWS_DEFAULT_REGION`; for RunPod, the datacenter ID such as `EU-RO-1`. */
  readonly region: string | undefined;
  readonly accessKeyId: string | undefined;
  readonly secretAccessKey: string | undefined;
  readonly sessionToken: string | undefined;
}

/** Where a volume root came from. */
export type VolumeOrigin = 'option' | 'KILN_VOLUME' | 'runpod' | 'local';

/** Everything `@kiln/models` takes from the environment, read once. */
export interface ModelsSettings {
  /** Absolute volume root: model `x` lives in `<volume>/x`. */
  readonly volume: string;
  readonly volumeOrigin: VolumeOrigin;
  /** The config file that holds the manifest, when one was given or found. */
  readonly configFile: string | undefined;
  /** `kiln.lock` beside the config (it may not exist yet). */
  readonly lockfile: string | undefined;
  readonly hub: { readonly url: string; readonly token: string | undefined };
  readonly s3: S3Settings;
  readonly concurrency: number;
}

/** Overrides from a command line or a caller; each wins over the environment. */
export interface SettingsOverrides {
  volume?: string;
  config?: string;
  concurrency?: number;
  hubUrl?: string;
  /** The folder relative paths and the config search start from (default: the process's). */
  cwd?: string;
  /** Whether a path exists as a folder (tests replace it to simulate `/runpod-volume`). */
  isFolder?: (folder: string) => boolean;
}

/**
 * Reads `KILN_VOLUME`, `KILN_CONFIG`, `HF_TOKEN`, `HF_ENDPOINT` and the `AWS_*` variables, finds the
 * config and picks the volume root: the option, else `KILN_VOLUME`, else `/runpod-volume` when it
 * exists, else `.kiln/volumes/models` beside the config (or in the current folder). The only module
 * of this package that reads the environment. Throws {@link ManifestError} on unusable values.
 *
 * @example
 * const settings = readModelsSettings(process.env, { volume: '/mnt/models' });
 */
export function readModelsSettings(env: Readonly<Record<string, string | undefined>>, overrides: SettingsOverrides = {}): ModelsSettings {
  const cwd = path.resolve(overrides.cwd ?? process.cwd());
  const isFolder = overrides.isFolder ?? folderExists;
  const issues: ManifestIssue[] = [];
  const value = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);

  const explicitConfig = overrides.config ?? value('KILN_CONFIG');
  const configFile = explicitConfig !== undefined ? path.resolve(cwd, explicitConfig) : findUpwards(cwd, CONFIG_FILE_NAME);
  const baseDir = configFile === undefined ? cwd : path.dirname(configFile);

  let volume: string;
  let volumeOrigin: VolumeOrigin;
  if (overrides.volume !== undefined) [volume, volumeOrigin] = [path.resolve(cwd, overrides.volume), 'option'];
  else if (value('KILN_VOLUME') !== undefined) [volume, volumeOrigin] = [path.resolve(cwd, value('KILN_VOLUME')!), 'KILN_VOLUME'];
  else if (isFolder(RUNPOD_VOLUME)) [volume, volumeOrigin] = [RUNPOD_VOLUME, 'runpod'];
  else [volume, volumeOrigin] = [path.resolve(baseDir, LOCAL_VOLUME), 'local'];

  const hubUrl = (overrides.hubUrl ?? value('HF_ENDPOINT') ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(hubUrl)) issues.push({ key: overrides.hubUrl === undefined ? 'HF_ENDPOINT' : 'hubUrl', value: hubUrl, rule: 'must be an http(s) URL such as https://huggingface.co' });
  const token = value('HF_TOKEN') ?? value('HUGGING_FACE_HUB_TOKEN');
  // @huggingface/hub refuses other tokens with a TypeError deep inside a download: say it here.
  if (token !== undefined && !token.startsWith('hf_')) issues.push({ key: 'HF_TOKEN', value: '(hidden)', rule: `must be a Hugging Face access token (hf_…), from ${hubUrl}/settings/tokens` });

  const endpoint = value('AWS_ENDPOINT_URL_S3') ?? value('AWS_ENDPOINT_URL');
  if (endpoint !== undefined && !/^https?:\/\//.test(endpoint)) issues.push({ key: 'AWS_ENDPOINT_URL_S3', value: endpoint, rule: 'must be an http(s) URL' });

  const concurrency = overrides.concurrency ?? CONCURRENCY.default;
  if (!Number.isInteger(concurrency) || concurrency < CONCURRENCY.min || concurrency > CONCURRENCY.max) {
    issues.push({ key: 'concurrency', value: concurrency, rule: `must be an integer from ${CONCURRENCY.min} to ${CONCURRENCY.max}` });
  }
  if (issues.length > 0) throw new ManifestError(issues, { file: 'models settings' });

  return Object.freeze({
    volume,
    volumeOrigin,
    configFile,
    lockfile: configFile === undefined ? undefined : path.join(path.dirname(configFile), LOCKFILE_NAME),
    hub: Object.freeze({ url: hubUrl, token }),
    s3: Object.freeze({
      endpoint,
      region: value('AWS_REGION') ?? value('AWS_DEFAULT_REGION'),
      accessKeyId: value('AWS_ACCESS_KEY_ID'),
      secretAccessKey: value('AWS_SECRET_ACCESS_KEY'),
      sessionToken: value('AWS_SESSION_TOKEN'),
    }),
    concurrency,
  });
}

let processSettings: ModelsSettings | undefined;

/** {@link readModelsSettings} of this process's environment, read on first use and kept. */
export function processModelsSettings(): ModelsSettings {
  processSettings ??= readModelsSettings(process.env);
  return processSettings;
}

function findUpwards(from: string, name: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

function folderExists(folder: string): boolean {
  try {
    return statSync(folder).isDirectory();
  } catch {
    return false;
  }
}
