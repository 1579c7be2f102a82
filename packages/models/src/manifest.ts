import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ManifestError, type ManifestIssue } from './errors.ts';
import { MODEL_NAME_PATTERN, unsafeReason } from './safe-path.ts';
import { defaultFileName, isSingleFile, parseSourceUri, SOURCE_RULE, type SourceRef } from './source-uri.ts';

/**
 * One model entry as written in the config's `models` section, without `instructions`: what
 * `kiln.lock` records beside a resolution, so that a changed entry is noticed.
 */
export interface ManifestEntry {
  readonly source: string;
  readonly revision?: string;
  readonly files?: readonly string[];
  readonly sha256?: string;
  readonly size?: number;
  readonly path?: string;
  readonly endpoint?: string;
  readonly region?: string;
}

/** A model entry, validated, with its source parsed. */
export interface ModelSpec {
  readonly name: string;
  readonly source: SourceRef;
  /** The entry as written (canonical key order), compared with `kiln.lock` and the volume's records. */
  readonly entry: ManifestEntry;
  /** Hugging Face: the branch, tag or commit asked for (`main` when unset). */
  readonly revision: string | undefined;
  /** Globs over the source's paths (Hugging Face, S3 prefixes, local folders); empty selects every file. */
  readonly include: readonly string[];
  /** Single-file sources: the expected digest (lower-case hex) and size. */
  readonly sha256: string | undefined;
  readonly size: number | undefined;
  /** Single-file sources: the file's name inside the model folder. */
  readonly fileName: string | undefined;
  /** S3: endpoint URL and region for this model (else the settings'). */
  readonly endpoint: string | undefined;
  readonly region: string | undefined;
  /** `manual` models: what a person must do. */
  readonly instructions: string | undefined;
}

/** Every model of a config, by name; frozen. */
export type Manifest = Readonly<Record<string, ModelSpec>>;

/** What {@link loadManifestFile} read from a config file. */
export interface LoadedConfig {
  readonly file: string;
  /** The config's folder: relative paths, `kiln.lock` and `.kiln/volumes/models` are resolved against it. */
  readonly baseDir: string;
  readonly manifest: Manifest;
  /** `endpoints.<name>.models` of every endpoint (what `kiln models pull --endpoint` pulls). */
  readonly endpointModels: Readonly<Record<string, readonly string[]>>;
}

const SHA256 = /^[A-Fa-f0-9]{64}$/;

const entrySchema = z.strictObject(
  {
    source: z.string({ error: SOURCE_RULE }).min(1, { error: SOURCE_RULE }),
    revision: z.string({ error: 'must be a branch, tag or commit' }).min(1, { error: 'must be a branch, tag or commit' }).optional(),
    files: z.array(z.string({ error: 'must be a path or glob' }), { error: 'must be an array of paths or globs' }).optional(),
    sha256: z.string({ error: 'must be 64 hex digits' }).regex(SHA256, { error: 'must be 64 hex digits' }).optional(),
    size: z.number({ error: 'must be a size in bytes' }).int({ error: 'must be a whole number of bytes' }).min(0, { error: 'must be a size in bytes' }).optional(),
    path: z.string({ error: 'must be a file name inside the model folder' }).optional(),
    endpoint: z.url({ error: 'must be an http(s) URL, e.g. https://s3api-eu-ro-1.runpod.io' }).optional(),
    region: z.string({ error: 'must be a region name' }).min(1, { error: 'must be a region name' }).optional(),
    instructions: z.string({ error: 'must be text that tells a person how to obtain the files' }).min(1, { error: 'must be text that tells a person how to obtain the files' }).optional(),
  },
  { error: 'must be an object { source, … }' },
);

type RawEntry = z.output<typeof entrySchema>;

/**
 * Validates the config's `models` section and returns a frozen manifest. Relative `file:` paths
 * resolve against `baseDir`. Throws {@link ManifestError} listing every issue.
 *
 * @example
 * const manifest = parseManifest({ sam3: { source: 'hf://1038lab/sam3' } }, { baseDir: process.cwd() });
 * manifest.sam3?.source; // { kind: 'hf', repo: '1038lab/sam3', revision: undefined, include: [] }
 */
export function parseManifest(value: unknown, options: { baseDir: string; keyPrefix?: string }): Manifest {
  const prefix = options.keyPrefix ?? 'models';
  if (value === undefined || value === null) return Object.freeze({});
  if (typeof value !== 'object' || Array.isArray(value)) throw new ManifestError([{ key: prefix, value, rule: 'must be an object of models by name' }]);
  const issues: ManifestIssue[] = [];
  const manifest: Record<string, ModelSpec> = {};
  for (const [name, raw] of Object.entries(value as Record<string, unknown>)) {
    const key = `${prefix}.${name}`;
    if (!MODEL_NAME_PATTERN.test(name)) {
      issues.push({ key, value: name, rule: 'model names are letters, digits, ".", "_" or "-", start with a letter or digit, at most 100 characters' });
      continue;
    }
    const parsed = entrySchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          for (const k of issue.keys) issues.push({ key: `${key}.${k}`, value: (raw as Record<string, unknown>)[k], rule: 'is not a known model setting (check its spelling)' });
        } else {
          const at = issue.path.map(String).join('.');
          issues.push({ key: at === '' ? key : `${key}.${at}`, value: valueAt(raw, issue.path), rule: issue.message });
        }
      }
      continue;
    }
    const spec = toSpec(name, parsed.data, key, options.baseDir, issues);
    if (spec !== undefined) manifest[name] = spec;
  }
  if (issues.length > 0) throw new ManifestError(issues);
  return deepFreeze(manifest);
}

function toSpec(name: string, raw: RawEntry, key: string, baseDir: string, issues: ManifestIssue[]): ModelSpec | undefined {
  const before = issues.length;
  const source = parseSourceUri(raw.source, baseDir);
  if (typeof source === 'string') {
    issues.push({ key: `${key}.source`, value: raw.source, rule: source });
    return undefined;
  }
  const only = (field: keyof RawEntry, allowed: boolean, rule: string) => {
    if (raw[field] !== undefined && !allowed) issues.push({ key: `${key}.${field}`, value: raw[field], rule });
  };
  const single = isSingleFile(source) || source.kind === 'file' || source.kind === 'manual';
  only('revision', source.kind === 'hf', 'applies to hf:// sources only');
  only('files', source.kind === 'hf' || source.kind === 'file' || (source.kind === 's3' && !isSingleFile(source)), 'applies to hf://, s3:// prefixes (ending in /) and file: folders');
  only('sha256', single, 'applies to single-file sources (https://, an s3:// object, file:, manual)');
  only('size', single, 'applies to single-file sources (https://, an s3:// object, file:, manual)');
  only('path', single, 'applies to single-file sources (https://, an s3:// object, file:, manual)');
  only('endpoint', source.kind === 's3', 'applies to s3:// sources only');
  only('region', source.kind === 's3', 'applies to s3:// sources only');
  only('instructions', source.kind === 'manual', 'applies to manual sources only');
  if (source.kind === 'manual' && raw.instructions === undefined) {
    issues.push({ key: `${key}.instructions`, value: undefined, rule: 'manual models need instructions that tell a person how to obtain the files' });
  }
  if (source.kind === 'hf' && source.revision !== undefined && raw.revision !== undefined && source.revision !== raw.revision) {
    issues.push({ key: `${key}.revision`, value: raw.revision, rule: `contradicts the @${source.revision} in source: give the revision once` });
  }
  (raw.files ?? []).forEach((glob, i) => {
    const reason = unsafeReason(glob);
    if (reason !== undefined) issues.push({ key: `${key}.files[${i}]`, value: glob, rule: `must be a relative path or glob: ${reason}` });
  });
  if (raw.path !== undefined) {
    const reason = unsafeReason(raw.path);
    if (reason !== undefined) issues.push({ key: `${key}.path`, value: raw.path, rule: `must be a relative path inside the model folder: ${reason}` });
  }
  const fileName = raw.path ?? defaultFileName(source);
  if (isSingleFile(source) && fileName === undefined) {
    issues.push({ key: `${key}.path`, value: undefined, rule: 'the source URL ends without a file name: give one in "path"' });
  }
  if (issues.length > before) return undefined;

  const entry: ManifestEntry = {
    source: raw.source,
    ...(raw.revision === undefined ? {} : { revision: raw.revision }),
    ...(raw.files === undefined ? {} : { files: [...raw.files] }),
    ...(raw.sha256 === undefined ? {} : { sha256: raw.sha256.toLowerCase() }),
    ...(raw.size === undefined ? {} : { size: raw.size }),
    ...(raw.path === undefined ? {} : { path: raw.path }),
    ...(raw.endpoint === undefined ? {} : { endpoint: raw.endpoint }),
    ...(raw.region === undefined ? {} : { region: raw.region }),
  };
  return {
    name,
    source,
    entry,
    revision: source.kind === 'hf' ? (raw.revision ?? source.revision) : undefined,
    include: [...(source.kind === 'hf' ? source.include : []), ...(raw.files ?? [])],
    sha256: raw.sha256?.toLowerCase(),
    size: raw.size,
    fileName,
    endpoint: raw.endpoint,
    region: raw.region,
    instructions: raw.instructions,
  };
}

/** Whether two entries pin the same thing (compared as canonical JSON). */
export function sameEntry(a: ManifestEntry, b: ManifestEntry): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** JSON with object keys sorted, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : v,
  );
}

/**
 * Reads a `kiln.config.json` (comments allowed) and parses its `models` section and the model
 * lists of its endpoints. Nothing else in the file is validated here: the gateway owns the rest.
 *
 * @example
 * const { manifest, baseDir } = loadManifestFile('kiln.config.json');
 */
export function loadManifestFile(file: string): LoadedConfig {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (cause) {
    throw new ManifestError([], { cause, message: `cannot read config ${absolute}: ${(cause as Error).message}` });
  }
  let value: unknown;
  try {
    value = JSON.parse(withoutJsonComments(text));
  } catch (cause) {
    throw new ManifestError([], { cause, message: `config ${absolute} is not valid JSON: ${(cause as Error).message}` });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ManifestError([{ key: '(root)', value, rule: 'must be a JSON object' }], { file: absolute });
  }
  const root = value as Record<string, unknown>;
  const baseDir = path.dirname(absolute);
  let manifest: Manifest;
  try {
    manifest = parseManifest(root['models'], { baseDir });
  } catch (error) {
    if (error instanceof ManifestError) throw new ManifestError(error.issues, { file: `config ${absolute}`, cause: error });
    throw error;
  }
  const endpointModels: Record<string, readonly string[]> = {};
  const endpoints = root['endpoints'];
  if (typeof endpoints === 'object' && endpoints !== null) {
    for (const [name, endpoint] of Object.entries(endpoints as Record<string, unknown>)) {
      const models = typeof endpoint === 'object' && endpoint !== null ? (endpoint as Record<string, unknown>)['models'] : undefined;
      endpointModels[name] = Array.isArray(models) ? models.filter((m): m is string => typeof m === 'string') : [];
    }
  }
  return deepFreeze({ file: absolute, baseDir, manifest, endpointModels });
}

/** Blanks `//` and `/* *\/` comments outside strings (keeping line breaks, so JSON errors point at the right line). */
export function withoutJsonComments(text: string): string {
  const out: string[] = [];
  let inString = false;
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    const next = text[i + 1];
    if (inString) {
      out.push(ch);
      if (ch === '\\' && next !== undefined) {
        out.push(next);
        i += 2;
        continue;
      }
      if (ch === '"') inString = false;
      i++;
    } else if (ch === '"') {
      inString = true;
      out.push(ch);
      i++;
    } else if (ch === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end === -1 ? text.length : end + 2;
      for (let j = i; j < stop; j++) out.push(text[j] === '\n' ? '\n' : ' ');
      i = stop;
    } else {
      out.push(ch);
      i++;
    }
  }
  return out.join('');
}

function valueAt(input: unknown, segments: readonly PropertyKey[]): unknown {
  let current = input;
  for (const s of segments) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[s];
  }
  return current;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
