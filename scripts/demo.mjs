// `npm run demo`: one job to each endpoint of examples/kiln.config.json through a real gateway
// (`kiln serve` on a free loopback port, SQLite in a temp folder), then a report: status, output
// (media written under .kiln/demo/, their paths printed instead of base64), delay, execution time
// and the cold start of the worker that ran it. Exit 0 when every endpoint that can run here
// completed its job; an endpoint this machine cannot run (python-runpod without the `runpod`
// package), or one without a test_input.json, is reported as skipped with the reason. Any other
// failure exits 1. `npm run demo` builds first (`tsc -b`).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG = path.join(ROOT, 'examples/kiln.config.json');
const KILN = path.join(ROOT, 'packages/cli/bin/kiln.js');
/** Where media outputs are written. */
const OUT_DIR = path.join(ROOT, '.kiln/demo');
/** How long the gateway may take to listen and check models (a first run copies the models onto the volume). */
const START_TIMEOUT_MS = 120_000;
/** How long one job may take, cold start included. */
const JOB_TIMEOUT_MS = 300_000;
/** Base64 strings longer than this are written to a file rather than printed. */
const INLINE_LIMIT = 200;

/** File types recognised by their first bytes, for the name of the written file. */
const MAGIC = [
  { ext: 'wav', test: (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WAVE' },
  { ext: 'mp4', test: (b) => b.subarray(4, 8).toString('latin1') === 'ftyp' },
  { ext: 'png', test: (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  { ext: 'jpg', test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { ext: 'webm', test: (b) => b.readUInt32BE(0) === 0x1a45dfa3 },
];

/** Why this machine cannot run an endpoint's worker, or undefined when it can. */
function cannotRun(settings) {
  const command = String(settings.worker?.command ?? '');
  const python = /^(python3?|\S*\/python3?)(\s|$)/.exec(command)?.[1];
  if (python === undefined) return undefined;
  const source = readFileOr(path.join(path.resolve(path.dirname(CONFIG), settings.worker.cwd ?? '.'), command.split(/\s+/)[1] ?? ''), '');
  if (!/^\s*import runpod|^\s*from runpod/m.test(source)) return undefined;
  const probe = spawnSync(python, ['-c', 'import runpod'], { encoding: 'utf8' });
  if (probe.error) return `${python} is not available (${probe.error.message})`;
  if (probe.status === 0) return undefined;
  const why = probe.stderr.trim().split('\n').at(-1) || `exit code ${probe.status}`;
  return `\`${python} -c "import runpod"\` fails: ${why} (pip install runpod)`;
}

function readFileOr(file, fallback) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/**
 * The endpoint's test_input.json as a request body, or the reason there is none: an endpoint
 * without one has no meaningful job to run (an empty input would only show its validation error).
 */
function testRequest(settings) {
  const file = path.join(path.resolve(path.dirname(CONFIG), settings.worker?.cwd ?? '.'), 'test_input.json');
  const text = readFileOr(file, undefined);
  if (text === undefined) return { skip: `no test_input.json in ${path.relative(process.cwd(), path.dirname(file)) || '.'} (add one to include this endpoint in the demo)` };
  const parsed = JSON.parse(text);
  return { request: parsed !== null && typeof parsed === 'object' && 'input' in parsed ? parsed : { input: parsed } };
}

/** Replaces long base64 strings in an output by the paths of the files they decode to. */
function externalizeMedia(value, endpoint, written, key = 'output') {
  if (typeof value === 'string') {
    if (value.length <= INLINE_LIMIT || !/^[A-Za-z0-9+/]+={0,2}$/.test(value.slice(0, 4096))) return value.length > INLINE_LIMIT ? `${value.slice(0, INLINE_LIMIT)}…` : value;
    const bytes = Buffer.from(value, 'base64');
    const ext = MAGIC.find((m) => bytes.length >= 12 && m.test(bytes))?.ext ?? 'bin';
    const file = path.join(OUT_DIR, `${endpoint}-${key.replace(/_?base64$/, '') || 'data'}.${ext}`);
    writeFileSync(file, bytes);
    written.push(file);
    return path.relative(process.cwd(), file) || file;
  }
  if (Array.isArray(value)) return value.map((v, i) => externalizeMedia(v, endpoint, written, `${key}-${i}`));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, externalizeMedia(v, endpoint, written, k)]));
  }
  return value;
}

function ms(value) {
  if (typeof value !== 'number') return '?';
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
}

/** Starts `kiln serve` and resolves with its URL once it listens and has checked the models. */
function startGateway(dbDir) {
  const child = spawn(process.execPath, [KILN, 'serve', '--config', CONFIG, '--host', '127.0.0.1', '--port', '0'], {
    cwd: ROOT,
    env: { ...process.env, KILN_DATABASE_URL: path.join(dbDir, 'kiln.db'), NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.setEncoding('utf8').on('data', (chunk) => (log += chunk));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not get ready within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const check = () => {
      const url = /listening on (http:\/\/\S+)/.exec(log)?.[1];
      if (url !== undefined && /kiln serve: ready/.test(log)) {
        clearTimeout(timer);
        child.stderr.off('data', check);
        resolve(url);
      }
    };
    child.stderr.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited with code ${code}`));
    });
  });
  return { child, ready, log: () => log };
}

/** The model lines `kiln serve` logged (JSON lines with a `model` field). */
function modelLines(log) {
  return log
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"model"'))
    .map((l) => JSON.parse(l))
    .map((l) => `${l.level === 'warn' ? 'WARN ' : ''}${l.message}`);
}

async function runJob(url, endpoint, request) {
  const started = performance.now();
  const res = await fetch(`${url}/v2/${endpoint}/runsync?wait=${JOB_TIMEOUT_MS}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
    signal: AbortSignal.timeout(JOB_TIMEOUT_MS + 10_000),
  });
  const status = await res.json();
  const roundTripMs = performance.now() - started;
  let coldStartMs;
  if (typeof status.workerId === 'string') {
    const workers = await (await fetch(`${url}/kiln/v1/endpoints/${endpoint}/workers`)).json();
    coldStartMs = workers.workers?.find((w) => w.workerId === status.workerId)?.coldStartMs ?? undefined;
  }
  return { httpStatus: res.status, status, roundTripMs, coldStartMs };
}

async function main() {
  const config = JSON.parse(readFileSync(CONFIG, 'utf8'));
  const endpoints = Object.entries(config.endpoints ?? {});
  const dbDir = mkdtempSync(path.join(os.tmpdir(), 'kiln-demo-'));
  mkdirSync(OUT_DIR, { recursive: true });
  const gateway = startGateway(dbDir);
  let failed = 0;
  try {
    const url = await gateway.ready;
    console.log(`kiln demo: gateway ${url}, config ${path.relative(process.cwd(), CONFIG) || CONFIG}, database ${dbDir}`);
    for (const line of modelLines(gateway.log())) console.log(`  ${line}`);
    const width = Math.max(...endpoints.map(([name]) => name.length));
    for (const [endpoint, settings] of endpoints) {
      const label = endpoint.padEnd(width);
      try {
        const input = testRequest(settings);
        const reason = cannotRun(settings) ?? input.skip;
        if (reason !== undefined) {
          console.log(`${label}  SKIPPED    ${reason}`);
          continue;
        }
        const { httpStatus, status, roundTripMs, coldStartMs } = await runJob(url, endpoint, input.request);
        const timings = `delay ${ms(status.delayTime)}, execution ${ms(status.executionTime)}, cold start ${ms(coldStartMs)}, round trip ${ms(roundTripMs)}`;
        if (status.status !== 'COMPLETED') {
          failed++;
          console.log(`${label}  ${String(status.status ?? `HTTP ${httpStatus}`).padEnd(9)}  ${timings}`);
          console.log(`${' '.repeat(width)}  error: ${JSON.stringify(status.error ?? status).slice(0, 1000)}`);
          continue;
        }
        const written = [];
        const output = externalizeMedia(status.output, endpoint, written);
        console.log(`${label}  COMPLETED  ${timings}`);
        console.log(`${' '.repeat(width)}  output: ${JSON.stringify(output)}`);
        for (const file of written) console.log(`${' '.repeat(width)}  wrote ${path.relative(process.cwd(), file) || file}`);
      } catch (error) {
        failed++;
        console.log(`${label}  ERROR      ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } catch (error) {
    failed++;
    console.log(`kiln demo: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    if (gateway.child.exitCode === null) {
      const exited = new Promise((resolve) => gateway.child.once('exit', resolve));
      gateway.child.kill('SIGTERM');
      await exited;
    }
    if (failed > 0) process.stderr.write(`--- gateway log ---\n${gateway.log()}`);
    rmSync(dbDir, { recursive: true, force: true });
  }
  console.log(failed === 0 ? 'kiln demo: done' : `kiln demo: ${failed} endpoint(s) failed`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
