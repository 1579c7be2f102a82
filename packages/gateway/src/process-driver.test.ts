import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '@kiln/protocol';
import { DEFAULT_INHERITED_ENV, MAX_LOG_LINE_CHARS, ProcessDriver, splitCommand, type WorkerLogLine, type WorkerSpec } from './process-driver.ts';

/** A command running `code` in this Node binary; `code` is passed in single quotes, so it uses double quotes only. */
function nodeCommand(code: string): string {
  assert.ok(!code.includes("'"), 'fixture code must not contain single quotes');
  return `"${process.execPath}" -e '${code}'`;
}

function setup() {
  const clock = new ManualClock();
  const logs: WorkerLogLine[] = [];
  const waiters: (() => void)[] = [];
  const driver = new ProcessDriver({
    clock,
    onLog: (line) => {
      logs.push(line);
      for (const wake of waiters.splice(0)) wake();
    },
  });
  const spec = (command: string, extra: Partial<WorkerSpec> = {}): WorkerSpec => ({
    endpoint: 'echo',
    workerId: 'echo-1',
    command,
    cwd: process.cwd(),
    env: {},
    ...extra,
  });
  /** Resolves once a line with exactly this text has been captured. */
  const lineSeen = async (text: string): Promise<void> => {
    while (!logs.some((l) => l.line === text)) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  const lines = (stream: 'stdout' | 'stderr') => logs.filter((l) => l.stream === stream).map((l) => l.line);
  return { clock, logs, driver, spec, lineSeen, lines };
}

test('splitCommand splits on whitespace and keeps simple double and single quotes together', () => {
  const cases: [string, string[]][] = [
    ['node dist/worker.js', ['node', 'dist/worker.js']],
    ['  python3   handler.py\t--rp_log_level  INFO ', ['python3', 'handler.py', '--rp_log_level', 'INFO']],
    [`python3 -c 'print("hi there")'`, ['python3', '-c', 'print("hi there")']],
    [`"/opt/my node/bin/node" --name="a b" ''`, ['/opt/my node/bin/node', '--name=a b', '']],
    ['', []],
  ];
  for (const [command, argv] of cases) assert.deepEqual(splitCommand(command), argv, command);
  assert.throws(() => splitCommand(`node -e 'oops`), /unterminated ' quote/);
});

test('the worker gets exactly the given env plus the inherited allow-list; nothing else of the gateway env leaks', async () => {
  const { driver, spec, lines } = setup();
  process.env['SECRET_FROM_GATEWAY'] = 'hunter2';
  let proc;
  try {
    proc = driver.start(spec(nodeCommand('console.log(JSON.stringify(process.env))'), { env: { RUNPOD_POD_ID: 'echo-1', RUNPOD_ENDPOINT_ID: 'echo' } }));
  } finally {
    delete process.env['SECRET_FROM_GATEWAY'];
  }
  assert.deepEqual(await proc.exited, { code: 0, signal: null });
  const expected: Record<string, string> = {};
  for (const name of DEFAULT_INHERITED_ENV) {
    const value = process.env[name];
    if (value !== undefined) expected[name] = value;
  }
  Object.assign(expected, { RUNPOD_POD_ID: 'echo-1', RUNPOD_ENDPOINT_ID: 'echo' });
  const [printed] = lines('stdout');
  assert.deepEqual(JSON.parse(printed!), expected);
});

test('inheritEnv replaces the allow-list, the given env wins over inherited values, and gpus sets CUDA_VISIBLE_DEVICES', async () => {
  const { driver, spec, lines } = setup();
  process.env['KILN_TEST_INHERITED'] = 'from-gateway';
  process.env['KILN_TEST_OVERRIDDEN'] = 'from-gateway';
  let proc;
  try {
    proc = driver.start(
      spec(nodeCommand('console.log(JSON.stringify(process.env))'), {
        env: { KILN_TEST_OVERRIDDEN: 'from-spec', CUDA_VISIBLE_DEVICES: '0' },
        inheritEnv: ['KILN_TEST_INHERITED', 'KILN_TEST_OVERRIDDEN', 'KILN_TEST_ABSENT'],
        gpus: '1,3',
      }),
    );
  } finally {
    delete process.env['KILN_TEST_INHERITED'];
    delete process.env['KILN_TEST_OVERRIDDEN'];
  }
  await proc.exited;
  assert.deepEqual(JSON.parse(lines('stdout')[0]!), {
    KILN_TEST_INHERITED: 'from-gateway',
    KILN_TEST_OVERRIDDEN: 'from-spec',
    CUDA_VISIBLE_DEVICES: '1,3',
  });
});

test('stdout and stderr are captured line by line, in order: partial lines across chunks, split UTF-8, CRLF, a last line without newline', async () => {
  const { driver, spec, logs, lines, clock } = setup();
  const code = String.raw`
    const out = process.stdout, err = process.stderr;
    const later = (ms) => new Promise((r) => setTimeout(r, ms));
    (async () => {
      out.write("one\ntw"); err.write("err ");
      await later(20);
      out.write("o\nthr"); err.write("one\n");
      await later(20);
      out.write("ee\r\ncaf"); out.write(Buffer.from([0xc3]));
      await later(20);
      out.write(Buffer.from([0xa9, 0x0a]));
      err.write("err two\nerr three without newline");
      out.write("last without newline");
    })();
  `;
  const proc = driver.start(spec(nodeCommand(code)));
  assert.equal(typeof proc.pid, 'number');
  assert.equal(proc.workerId, 'echo-1');
  assert.deepEqual(await proc.exited, { code: 0, signal: null });
  assert.deepEqual(lines('stdout'), ['one', 'two', 'three', 'café', 'last without newline']);
  assert.deepEqual(lines('stderr'), ['err one', 'err two', 'err three without newline']);
  for (const line of logs) {
    assert.equal(line.workerId, 'echo-1');
    assert.equal(line.endpoint, 'echo');
    assert.equal(line.time, clock.now());
  }
});

test(`a line longer than ${MAX_LOG_LINE_CHARS} characters is cut and marked; the next line is intact`, async () => {
  const { driver, spec, lines } = setup();
  const code = String.raw`
    process.stdout.write("x".repeat(10000));
    setTimeout(() => process.stdout.write("x".repeat(30000) + "\nafter the long line\n" + "y".repeat(40000)), 20);
  `;
  await driver.start(spec(nodeCommand(code))).exited;
  const out = lines('stdout');
  assert.equal(out.length, 3);
  assert.equal(out[0]!.length, MAX_LOG_LINE_CHARS);
  assert.match(out[0]!, /^x+ …\[truncated\]$/);
  assert.equal(out[1], 'after the long line');
  assert.match(out[2]!, /^y+ …\[truncated\]$/);
});

test('a JSON log line with a string requestId gets it as jobId; other lines get null', async () => {
  const { driver, spec, logs } = setup();
  const code = String.raw`
    console.log(JSON.stringify({ requestId: "job-1", level: "INFO", message: "Started." }));
    console.error(JSON.stringify({ requestId: "job-2", level: "ERROR", message: "boom" }));
    console.log(JSON.stringify({ requestId: null, level: "INFO", message: "no job" }));
    console.log(JSON.stringify({ requestId: 7 }));
    console.log(JSON.stringify({ message: "requestId elsewhere", requestId_: "x" }));
    console.log("[1, 2]");
    console.log("{ not json requestId");
    console.log("plain text job-1");
  `;
  await driver.start(spec(nodeCommand(code))).exited;
  const byLine = (stream: string) => logs.filter((l) => l.stream === stream).map((l) => l.jobId);
  assert.deepEqual(byLine('stdout'), ['job-1', null, null, null, null, null, null]);
  assert.deepEqual(byLine('stderr'), ['job-2']);
});

test('stop() sends SIGTERM; a worker that exits on SIGTERM is never SIGKILLed and the grace sleep is cancelled', async () => {
  const { driver, spec, lineSeen, lines, clock } = setup();
  const code = String.raw`
    process.on("SIGTERM", () => { console.log("got SIGTERM"); process.exit(0); });
    console.log("ready");
    setInterval(() => {}, 1000);
  `;
  const proc = driver.start(spec(nodeCommand(code)));
  await lineSeen('ready');
  await proc.stop(30_000);
  assert.deepEqual(await proc.exited, { code: 0, signal: null });
  assert.deepEqual(lines('stdout'), ['ready', 'got SIGTERM']);
  assert.deepEqual(clock.pending(), [], 'no SIGKILL timer left behind');
});

test('stop() on a worker with the default SIGTERM action: it dies of SIGTERM', async () => {
  const { driver, spec, lineSeen } = setup();
  const proc = driver.start(spec(nodeCommand('console.log("ready"); setInterval(() => {}, 1000)')));
  await lineSeen('ready');
  await proc.stop(30_000);
  assert.deepEqual(await proc.exited, { code: null, signal: 'SIGTERM' });
});

test('a worker that ignores SIGTERM is SIGKILLed once graceMs has passed on the clock', async () => {
  const { driver, spec, lineSeen, clock } = setup();
  const code = String.raw`
    process.on("SIGTERM", () => console.log("got SIGTERM, ignoring it"));
    console.log("ready");
    setInterval(() => {}, 1000);
  `;
  const proc = driver.start(spec(nodeCommand(code)));
  await lineSeen('ready');
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const stopped = proc.stop(5000);
  await lineSeen('got SIGTERM, ignoring it');
  await clock.waitForSleep(5000);
  await clock.advance(4999);
  assert.equal(exited, false, 'still alive before the grace period ends');
  await clock.advance(1);
  await stopped;
  assert.deepEqual(await proc.exited, { code: null, signal: 'SIGKILL' });
});

test('kill() sends SIGKILL at once; stopAll() stops every live worker', async () => {
  const { driver, spec, lineSeen } = setup();
  const forever = (name: string) => nodeCommand(`console.log("${name} ready"); setInterval(() => {}, 1000)`);
  const a = driver.start(spec(forever('a'), { workerId: 'a' }));
  const b = driver.start(spec(forever('b'), { workerId: 'b' }));
  const c = driver.start(spec(forever('c'), { workerId: 'c' }));
  await Promise.all([lineSeen('a ready'), lineSeen('b ready'), lineSeen('c ready')]);
  a.kill();
  assert.deepEqual(await a.exited, { code: null, signal: 'SIGKILL' });
  await driver.stopAll(30_000);
  assert.deepEqual(await b.exited, { code: null, signal: 'SIGTERM' });
  assert.deepEqual(await c.exited, { code: null, signal: 'SIGTERM' });
});

test('a worker exiting by itself reports its exit code', async () => {
  const { driver, spec } = setup();
  assert.deepEqual(await driver.start(spec(nodeCommand('process.exit(3)'))).exited, { code: 3, signal: null });
});

test('a command that cannot be spawned does not throw: it is an exit (127 when not found) and a stderr log line', async () => {
  const { driver, spec, logs } = setup();
  const missing = driver.start(spec('kiln-no-such-command-4f2a --flag', { workerId: 'missing' }));
  assert.equal(missing.pid, undefined);
  assert.deepEqual(await missing.exited, { code: 127, signal: null });
  await missing.stop(1000);
  missing.kill();
  const noCwd = driver.start(spec(`"${process.execPath}" -v`, { workerId: 'no-cwd', cwd: '/nonexistent/kiln-test-dir' }));
  assert.deepEqual(await noCwd.exited, { code: 127, signal: null });
  const badQuote = driver.start(spec(`node -e 'oops`, { workerId: 'bad-quote' }));
  assert.deepEqual(await badQuote.exited, { code: null, signal: null });
  const empty = driver.start(spec('   ', { workerId: 'empty' }));
  assert.deepEqual(await empty.exited, { code: null, signal: null });

  const lineOf = (workerId: string) => {
    const found = logs.filter((l) => l.workerId === workerId);
    assert.equal(found.length, 1, workerId);
    assert.equal(found[0]!.stream, 'stderr');
    assert.equal(found[0]!.jobId, null);
    return found[0]!.line;
  };
  assert.match(lineOf('missing'), /could not start worker missing .*kiln-no-such-command-4f2a.*ENOENT \(command not found\)/);
  assert.match(lineOf('no-cwd'), /\/nonexistent\/kiln-test-dir.*working directory does not exist/);
  assert.match(lineOf('bad-quote'), /unterminated ' quote/);
  assert.match(lineOf('empty'), /empty command/);
  await driver.stopAll(1000);
});
