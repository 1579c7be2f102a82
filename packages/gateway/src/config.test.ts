import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, parseConfig } from './config.ts';

const minimal = { endpoints: { tts: { worker: { command: 'node dist/worker.js' } } } };

function issuesOf(value: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(value, { baseDir: '/app', env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.message.split('\n').slice(1).map((line) => line.replace(/^ {2}- /, ''));
  }
  assert.fail('expected a ConfigError');
}

describe('parseConfig defaults', () => {
  it('applies RunPod defaults to an endpoint and the gateway', () => {
    const config = parseConfig(minimal, { baseDir: '/app', env: {} });
    const tts = config.endpoints.tts;
    assert.ok(tts);
    assert.equal(tts.name, 'tts');
    assert.deepEqual(tts.worker, { command: 'node dist/worker.js', cwd: '/app' });
    assert.equal(tts.workersMin, 0);
    assert.equal(tts.workersMax, 3);
    assert.equal(tts.idleTimeout, 5);
    assert.deepEqual(tts.scaler, { type: 'QUEUE_DELAY', value: 4 });
    assert.equal(tts.executionTimeoutMs, 600_000);
    assert.equal(tts.ttlMs, 86_400_000);
    assert.equal(tts.gpu, undefined);
    assert.deepEqual(tts.volumes, {});
    assert.deepEqual(tts.models, []);
    assert.deepEqual(tts.env, {});
    assert.deepEqual(tts.resolvedEnv, {});
    assert.deepEqual(tts.runpod, {});
    assert.deepEqual(config.gateway, {
      host: '127.0.0.1',
      port: 8080,
      apiKeys: [],
      sqlitePath: '/app/.kiln/kiln.db',
      retention: { runMs: 1_800_000, runsyncMs: 60_000 },
      maxAttempts: 3,
      pingIntervalMs: 10_000,
      pingTimeoutMs: 30_000,
      takeHoldMs: 30_000,
      stopGraceMs: 10_000,
      webhooks: { maxAttempts: 8, timeoutMs: 10_000, initialDelayMs: 5000, backoffFactor: 2 },
    });
    assert.deepEqual(config.models, {});
    assert.deepEqual(config.pricing, {});
  });

  it('takes the DESIGN.md example, resolving paths against the config folder', () => {
    const config = parseConfig(
      {
        endpoints: {
          tts: {
            worker: { command: 'node dist/worker.js', cwd: 'examples/tts' },
            workersMin: 1,
            workersMax: 3,
            idleTimeout: 5,
            scaler: { type: 'REQUEST_COUNT', value: 2 },
            gpu: { types: ['NVIDIA GeForce RTX 4090'], count: 1 },
            volumes: { models: { mountPath: '/runpod-volume', local: '.kiln/volumes/models' }, scratch: {} },
            models: ['silero-vad'],
            runpod: { image: 'ghcr.io/org/tts:1.0', containerDiskInGb: 10, flashboot: true },
          },
        },
        models: { 'silero-vad': { source: 'file:x.onnx', sha256: 'abc' } },
        pricing: { 'NVIDIA GeForce RTX 4090': { flexPerSecond: 0.00031 } },
        gateway: { port: 0, databaseUrl: 'data/jobs.db' },
      },
      { baseDir: '/srv/app', env: {} },
    );
    const tts = config.endpoints.tts;
    assert.ok(tts);
    assert.equal(tts.worker.cwd, '/srv/app/examples/tts');
    assert.deepEqual(tts.scaler, { type: 'REQUEST_COUNT', value: 2 });
    assert.deepEqual(tts.gpu, { types: ['NVIDIA GeForce RTX 4090'], count: 1 });
    assert.deepEqual(tts.volumes, {
      models: { mountPath: '/runpod-volume', local: '/srv/app/.kiln/volumes/models' },
      scratch: { mountPath: '/runpod-volume', local: '/srv/app/.kiln/volumes/scratch' },
    });
    assert.deepEqual(tts.runpod, { image: 'ghcr.io/org/tts:1.0', containerDiskInGb: 10, flashboot: true });
    assert.deepEqual(config.models, { 'silero-vad': { source: 'file:x.onnx', sha256: 'abc' } });
    assert.equal(config.gateway.port, 0);
    assert.equal(config.gateway.databaseUrl, 'data/jobs.db');
    assert.equal(config.gateway.sqlitePath, '/srv/app/data/jobs.db');
  });

  it('is deeply frozen and does not freeze the caller’s objects', () => {
    const input = structuredClone(minimal);
    const config = parseConfig(input, { baseDir: '/app', env: {} });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.endpoints.tts?.scaler));
    assert.ok(Object.isFrozen(config.gateway.retention));
    assert.throws(() => {
      (config.gateway as { port: number }).port = 1;
    }, TypeError);
    assert.ok(!Object.isFrozen(input.endpoints.tts));
  });
});

describe('parseConfig errors', () => {
  it('names key, value and the allowed range', () => {
    assert.deepEqual(issuesOf({ endpoints: { tts: { worker: { command: 'x' }, workersMax: 0 } } }), [
      'endpoints.tts.workersMax: 0 is not allowed: must be an integer from 1 to 100',
    ]);
  });

  it('lists every issue at once', () => {
    const issues = issuesOf({
      endpoints: {
        tts: {
          worker: {},
          idleTimeout: 0,
          executionTimeoutMs: 1000,
          ttlMs: 'long',
          scaler: { type: 'FAST' },
          workersMaxx: 2,
        },
      },
      gateway: { port: 70000, retention: { runMs: 1.5 } },
    });
    assert.deepEqual(issues.sort(), [
      'endpoints.tts.executionTimeoutMs: 1000 is not allowed: must be an integer from 5000 to 604800000 (ms)',
      'endpoints.tts.idleTimeout: 0 is not allowed: must be an integer from 1 to 3600 (seconds)',
      'endpoints.tts.scaler.type: "FAST" is not allowed: must be "QUEUE_DELAY" or "REQUEST_COUNT"',
      'endpoints.tts.ttlMs: "long" is not allowed: must be an integer from 10000 to 604800000 (ms)',
      'endpoints.tts.worker.command: is required: must be a non-empty command line',
      'endpoints.tts.workersMaxx: 2 is not allowed: is not a known setting (check its spelling)',
      'gateway.port: 70000 is not allowed: must be an integer from 0 to 65535',
      'gateway.retention.runMs: 1.5 is not allowed: must be an integer from 1000 to 604800000 (ms)',
    ]);
  });

  it('refuses bad endpoint names', () => {
    assert.deepEqual(issuesOf({ endpoints: { TTS_1: { worker: { command: 'x' } } } }), [
      'endpoints.TTS_1: "TTS_1" is not allowed: endpoint names must match ^[a-z0-9][a-z0-9-]{0,63}$ (lower-case letters, digits, dashes)',
    ]);
  });

  it('refuses workersMin above workersMax and unknown model references', () => {
    assert.deepEqual(issuesOf({ endpoints: { tts: { worker: { command: 'x' }, workersMin: 4, workersMax: 2, models: ['nope'] } } }), [
      'endpoints.tts.workersMin: 4 is not allowed: must be at most workersMax (2)',
      'endpoints.tts.models[0]: "nope" is not allowed: must name a model declared under the top-level "models"',
    ]);
  });

  it('refuses a non-object document', () => {
    assert.deepEqual(issuesOf([1]), ['(root): [1] is not allowed: must be a JSON object']);
  });

  it('hides API keys in messages', () => {
    assert.deepEqual(issuesOf({ gateway: { apiKeys: ['ok', ''] } }), ['gateway.apiKeys[1]: (hidden) is not allowed: must be a non-empty key']);
  });
});

describe('secrets', () => {
  const withEnv = {
    endpoints: {
      tts: {
        worker: { command: 'x' },
        env: { AWS_ACCESS_KEY_ID: { secret: 'MY_AWS_KEY' }, MODE: 'fast' },
      },
    },
  };

  it('resolves { secret } references from the given environment and keeps the references', () => {
    const config = parseConfig(withEnv, { baseDir: '/app', env: { MY_AWS_KEY: 'AKIA123' } });
    assert.deepEqual(config.endpoints.tts?.resolvedEnv, { AWS_ACCESS_KEY_ID: 'AKIA123', MODE: 'fast' });
    assert.deepEqual(config.endpoints.tts?.env, { AWS_ACCESS_KEY_ID: { secret: 'MY_AWS_KEY' }, MODE: 'fast' });
  });

  it('names a secret missing from the environment', () => {
    assert.deepEqual(issuesOf(withEnv), [
      'endpoints.tts.env.AWS_ACCESS_KEY_ID: {"secret":"MY_AWS_KEY"} is not allowed: secret MY_AWS_KEY is not set in the environment',
    ]);
  });

  it('refuses values that are neither strings nor references', () => {
    const issues = issuesOf({ endpoints: { tts: { worker: { command: 'x' }, env: { N: 3 } } } });
    assert.deepEqual(issues, ['endpoints.tts.env.N: 3 is not allowed: must be a string or { "secret": "NAME" }']);
  });
});

describe('gateway security defaults', () => {
  it('refuses a non-loopback host without API keys, saying so', () => {
    assert.deepEqual(issuesOf({ gateway: { host: '0.0.0.0' } }), [
      'gateway.host: "0.0.0.0" is not allowed: a non-loopback bind needs API keys: set gateway.apiKeys or KILN_API_KEYS, or bind 127.0.0.1',
    ]);
  });

  it('accepts a non-loopback host with keys from the config or from KILN_API_KEYS', () => {
    assert.deepEqual(parseConfig({ gateway: { host: '0.0.0.0', apiKeys: ['a'] } }, { baseDir: '/', env: {} }).gateway.apiKeys, ['a']);
    const fromEnv = parseConfig({ gateway: { host: '0.0.0.0', apiKeys: ['a'] } }, { baseDir: '/', env: { KILN_API_KEYS: ' b, a ,,c' } });
    assert.deepEqual(fromEnv.gateway.apiKeys, ['a', 'b', 'c']);
  });

  it('treats 127.x, localhost and ::1 as loopback', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) {
      assert.equal(parseConfig({ gateway: { host } }, { baseDir: '/', env: {} }).gateway.host, host);
    }
  });

  it('takes the database from KILN_DATABASE_URL over the file', () => {
    const pg = parseConfig({ gateway: { databaseUrl: 'x.db' } }, { baseDir: '/app', env: { KILN_DATABASE_URL: 'postgres://u@h/db' } });
    assert.equal(pg.gateway.databaseUrl, 'postgres://u@h/db');
    assert.equal(pg.gateway.sqlitePath, '/app/.kiln/kiln.db');
    const file = parseConfig({}, { baseDir: '/app', env: { KILN_DATABASE_URL: 'sqlite:/var/kiln.db' } });
    assert.equal(file.gateway.sqlitePath, '/var/kiln.db');
  });

  it('takes an optional PostgreSQL schema name for the store', () => {
    const config = parseConfig({ gateway: { databaseUrl: 'postgres://u@h/db', databaseSchema: 'kiln_staging' } }, { baseDir: '/', env: {} });
    assert.equal(config.gateway.databaseSchema, 'kiln_staging');
    assert.equal('databaseSchema' in parseConfig({}, { baseDir: '/', env: {} }).gateway, false);
    assert.deepEqual(issuesOf({ gateway: { databaseSchema: 'Kiln-Prod' } }), [
      'gateway.databaseSchema: "Kiln-Prod" is not allowed: must be a PostgreSQL schema name: lower-case letters, digits and _, not starting with a digit, at most 43 characters',
    ]);
  });
});

describe('loadConfig', () => {
  it('reads a commented JSON file and resolves paths against its folder', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kiln-config-'));
    try {
      const file = path.join(dir, 'kiln.config.json');
      writeFileSync(
        file,
        `{
          // the TTS endpoint
          "endpoints": { "tts": { "worker": { "command": "node w.js // not a comment", "cwd": "ex" } } } /* done */
        }`,
      );
      const config = loadConfig(file, {});
      assert.equal(config.baseDir, dir);
      assert.equal(config.endpoints.tts?.worker.command, 'node w.js // not a comment');
      assert.equal(config.endpoints.tts?.worker.cwd, path.join(dir, 'ex'));
      assert.equal(config.gateway.sqlitePath, path.join(dir, '.kiln/kiln.db'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the file in errors', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kiln-config-'));
    try {
      const file = path.join(dir, 'kiln.config.json');
      writeFileSync(file, '{ "gateway": { "port": -1 } }');
      assert.throws(() => loadConfig(file, {}), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.file, file);
        assert.match(err.message, new RegExp(`^invalid config ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\n {2}- gateway.port: -1 is not allowed`));
        return true;
      });
      writeFileSync(file, '{ nope');
      assert.throws(() => loadConfig(file, {}), /is not valid JSON/);
      assert.throws(() => loadConfig(path.join(dir, 'missing.json'), {}), /cannot read config/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('gateway.webhooks', () => {
  const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

  it('takes retry settings and a whsec_ secret; KILN_WEBHOOK_SECRET wins over the file', () => {
    const webhooks = { secret, maxAttempts: 3, timeoutMs: 2000, initialDelayMs: 100, backoffFactor: 1.5 };
    assert.deepEqual(parseConfig({ gateway: { webhooks } }, { baseDir: '/', env: {} }).gateway.webhooks, webhooks);
    const other = `whsec_${Buffer.alloc(24, 1).toString('base64')}`;
    assert.equal(parseConfig({ gateway: { webhooks: { secret } } }, { baseDir: '/', env: { KILN_WEBHOOK_SECRET: other } }).gateway.webhooks.secret, other);
    assert.equal(parseConfig({}, { baseDir: '/', env: { KILN_WEBHOOK_SECRET: other } }).gateway.webhooks.secret, other);
    assert.equal('secret' in parseConfig({}, { baseDir: '/', env: { KILN_WEBHOOK_SECRET: '' } }).gateway.webhooks, false);
  });

  it('refuses a secret that is not whsec_ + base64 of 24 to 64 bytes, without showing it', () => {
    const rule = 'must be whsec_ followed by the base64 of a 24- to 64-byte key';
    for (const bad of ['plain-secret', `whsec_${Buffer.alloc(16).toString('base64')}`, `whsec_${Buffer.alloc(65).toString('base64')}`, 'whsec_not base64!', '']) {
      const [issue, ...rest] = issuesOf({ gateway: { webhooks: { secret: bad } } });
      assert.deepEqual(rest, []);
      assert.ok(issue?.startsWith(`gateway.webhooks.secret: (hidden) is not allowed: ${rule}, e.g.`), issue);
    }
    const [fromEnv] = issuesOf({}, { KILN_WEBHOOK_SECRET: 'nope' });
    assert.match(fromEnv ?? '', /^gateway\.webhooks\.secret: \(hidden\) is not allowed: .*\(read from KILN_WEBHOOK_SECRET\)/);
    assert.deepEqual(issuesOf({ gateway: { webhooks: { secret: 42 } } }), [
      'gateway.webhooks.secret: (hidden) is not allowed: must be a Standard Webhooks secret: whsec_ followed by base64',
    ]);
  });

  it('names the key, the value and the range of a bad retry setting', () => {
    assert.deepEqual(issuesOf({ gateway: { webhooks: { maxAttempts: 0, timeoutMs: 500, initialDelayMs: 1.5, backoffFactor: 0.5, retries: 3 } } }), [
      'gateway.webhooks.maxAttempts: 0 is not allowed: must be an integer from 1 to 100',
      'gateway.webhooks.timeoutMs: 500 is not allowed: must be an integer from 1000 to 300000 (ms)',
      'gateway.webhooks.initialDelayMs: 1.5 is not allowed: must be an integer from 100 to 3600000 (ms)',
      'gateway.webhooks.backoffFactor: 0.5 is not allowed: must be a number from 1 to 10',
      'gateway.webhooks.retries: 3 is not allowed: is not a known setting (check its spelling)',
    ]);
  });
});
