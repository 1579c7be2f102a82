// The dashboard's view of the models volume: `createModelsAccess` over the real @kiln/models store
// on a temp volume with `file:` sources. Progress pacing runs on a ManualClock advanced by the
// pull's own events, so no test sleeps.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ManualClock, type ModelView } from '@kiln/protocol';
import { parseConfig, UnknownModelError, type GatewayConfig } from '@kiln/gateway';
import { ModelStore, parseManifest, readModelsSettings, type ModelsSettings, type PullEvent } from '@kiln/models';
import { createModelsAccess, PULL_PROGRESS_INTERVAL_MS, type ModelsAccessStore } from './dashboard-models.ts';

const WEIGHTS_BYTES = 3 * 1024 * 1024 + 17;

interface Fixture {
  config: GatewayConfig;
  settings: ModelsSettings;
  /** The real store, with `pull` calls counted and each pull event first passed to `beforeEvent`. */
  store: ModelsAccessStore & { pulls: string[][]; events: PullEvent[] };
  size: number;
}

async function fixture(t: { after(fn: () => Promise<void>): void }, beforeEvent: (event: PullEvent) => void = () => {}): Promise<Fixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-dashboard-models-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const weights = randomBytes(WEIGHTS_BYTES);
  await writeFile(path.join(dir, 'weights.bin'), weights);
  const models = {
    weights: { source: 'file:weights.bin', sha256: createHash('sha256').update(weights).digest('hex'), size: weights.length },
    gone: { source: 'file:not-there.bin' },
    hand: { source: 'manual', instructions: 'ask Ann for the file' },
  };
  const config = parseConfig({ endpoints: { e: { worker: { command: 'node w.js', cwd: '.' }, models: ['weights'] } }, models }, { baseDir: dir, env: {} });
  const settings = readModelsSettings({}, { volume: path.join(dir, 'volume'), cwd: dir });
  const real = new ModelStore({ manifest: parseManifest(config.models, { baseDir: dir }), volume: settings.volume, lockfile: settings.lockfile, durable: false });
  const pulls: string[][] = [];
  const events: PullEvent[] = [];
  const store = {
    manifest: real.manifest,
    volume: real.volume,
    status: real.status.bind(real),
    pull: (names?: readonly string[], options: Parameters<ModelStore['pull']>[1] = {}) => {
      pulls.push([...(names ?? [])]);
      return real.pull(names, {
        ...options,
        onEvent: (event) => {
          events.push(event);
          beforeEvent(event);
          options.onEvent?.(event);
        },
      });
    },
    pulls,
    events,
  };
  return { config, settings, store, size: weights.length };
}

/** Collects every view sent, and resolves `ended(name)` on the first view of `name` without a pull. */
function recorder(access: ReturnType<typeof createModelsAccess>) {
  const views: ModelView[] = [];
  const waiters: { name: string; resolve: (view: ModelView) => void }[] = [];
  access.subscribe((view) => {
    views.push(view);
    for (const w of waiters.filter((w) => w.name === view.name && view.pull === null)) w.resolve(view);
  });
  return {
    views,
    ended: (name: string) => new Promise<ModelView>((resolve) => waiters.push({ name, resolve })),
  };
}

test('list() shows each manifest model: missing before a pull, verified with its bytes after', async (t) => {
  const { config, settings, store, size } = await fixture(t);
  const access = createModelsAccess({ config, settings, store, clock: new ManualClock() });
  t.after(() => access.close());
  const before = await access.list();
  assert.equal(before.volume, settings.volume);
  assert.deepEqual(
    before.models.map((m) => [m.name, m.status, m.source, m.pull, m.error, m.totalBytes]),
    [
      ['weights', 'missing', 'file:weights.bin', null, null, null],
      ['gone', 'missing', 'file:not-there.bin', null, null, null],
      ['hand', 'missing', 'manual', null, null, null],
    ],
  );

  const { ended } = recorder(access);
  const done = ended('weights');
  const started = await access.pull('weights');
  assert.equal(started.name, 'weights');
  assert.deepEqual(started.pull, { doneBytes: 0, totalBytes: null }, 'pull() answers at once, with the pull under way');
  const last = await done;
  assert.deepEqual({ ...last, source: undefined }, { name: 'weights', source: undefined, status: 'verified', files: 1, bytes: size, totalBytes: size, pull: null, error: null });
  const after = (await access.list()).models.find((m) => m.name === 'weights');
  assert.deepEqual(after, last);
});

test('pull() of an unknown model rejects with UnknownModelError; a failed pull leaves its error on the view', async (t) => {
  const { config, settings, store } = await fixture(t);
  const access = createModelsAccess({ config, settings, store, clock: new ManualClock() });
  t.after(() => access.close());
  await assert.rejects(access.pull('nope'), (error: unknown) => error instanceof UnknownModelError && error.model === 'nope');
  assert.deepEqual(store.pulls, [], 'nothing was started for an unknown name');

  const { ended } = recorder(access);
  const gone = ended('gone');
  const hand = ended('hand');
  await access.pull('gone');
  await access.pull('hand');
  const [goneView, handView] = await Promise.all([gone, hand]);
  assert.equal(goneView.status, 'missing');
  assert.match(goneView.error ?? '', /not-there\.bin/);
  assert.match(handView.error ?? '', /ask Ann for the file/);
  const listed = await access.list();
  assert.match(listed.models.find((m) => m.name === 'gone')?.error ?? '', /not-there\.bin/, 'list() keeps the last failure');
});

test('a second pull() while one runs joins it: one store pull, one end', async (t) => {
  const { config, settings, store } = await fixture(t);
  const access = createModelsAccess({ config, settings, store, clock: new ManualClock() });
  t.after(() => access.close());
  const { views, ended } = recorder(access);
  const done = ended('weights');
  const [first, second] = await Promise.all([access.pull('weights'), access.pull('weights')]);
  const third = await access.pull('weights');
  assert.notEqual(first.pull, null);
  assert.notEqual(second.pull, null);
  assert.notEqual(third.pull, null);
  await done;
  assert.deepEqual(store.pulls, [['weights']]);
  assert.equal(views.filter((v) => v.name === 'weights' && v.pull === null).length, 1, 'one end');
});

test('progress is sent at most once per interval of the clock; the start, the resolution and the end always', async (t) => {
  const clock = new ManualClock();
  // Every download event moves the clock 40 ms: at 100 ms per view, about two events in five are sent.
  const { config, settings, store, size } = await fixture(t, (event) => {
    if (event.type === 'file' && event.phase !== 'checking') clock.advance(40);
  });
  const access = createModelsAccess({ config, settings, store, clock });
  t.after(() => access.close());
  const { views, ended } = recorder(access);
  const done = ended('weights');
  await access.pull('weights');
  await done;

  const fileEvents = store.events.filter((e) => e.type === 'file' && e.phase !== 'checking').length;
  assert.ok(fileEvents >= 4, `the file source should report progress in steps (got ${fileEvents} events)`);
  const progress = views.filter((v) => v.pull !== null && v.pull.totalBytes !== null);
  const moved = progress.filter((v) => v.pull!.doneBytes > 0).length;
  const allowed = Math.ceil((fileEvents * 40) / PULL_PROGRESS_INTERVAL_MS);
  assert.ok(moved <= allowed && moved < fileEvents, `${moved} progress views for ${fileEvents} events; at most ${allowed} expected`);
  assert.ok(moved >= 1, 'progress is sent, paced');
  const resolved = progress[0]!;
  assert.deepEqual(resolved.pull, { doneBytes: 0, totalBytes: size }, 'the resolution is sent with the bytes to fetch');
  const doneBytes = progress.map((v) => v.pull!.doneBytes);
  assert.deepEqual(doneBytes, [...doneBytes].sort((a, b) => a - b), 'progress only grows');
  assert.equal(views.at(-1)?.pull, null);
});

test('a tracked start-up pull is joined by the dashboard and its progress shows', async (t) => {
  const { config, settings, store } = await fixture(t);
  const access = createModelsAccess({ config, settings, store, clock: new ManualClock() });
  t.after(() => access.close());
  const { views, ended } = recorder(access);
  const done = ended('weights');
  // What kiln dev does at start: its own store.pull, reported through the access.
  const startup = access.track(['weights', 'not-in-manifest'], async (onEvent) => {
    const report = await store.pull(['weights'], { writeLockfile: false, onEvent });
    return report.results.map((r) => ({ model: r.model }));
  });
  const joined = await access.pull('weights');
  assert.notEqual(joined.pull, null, 'the dashboard sees the start-up pull as running');
  await startup;
  const last = await done;
  assert.equal(last.status, 'verified');
  assert.deepEqual(store.pulls, [['weights']], 'the dashboard did not start a second pull');
  assert.ok(views.some((v) => v.pull !== null && v.pull.totalBytes !== null), 'the start-up pull reported its progress');
});
