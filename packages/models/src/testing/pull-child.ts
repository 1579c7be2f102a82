// A separate process for cross-process tests: `ensure NAME` prints {"path"} when done; `pull NAME`
// prints one JSON line per progress event (so a test can kill it mid-file) and {"done"} at the end.
// Settings come from the environment (KILN_VOLUME, KILN_CONFIG, HF_ENDPOINT…), as in a worker.
import { ensure, ModelStore, readModelsSettings } from '../index.ts';

const [mode, name] = process.argv.slice(2);
if (name === undefined || (mode !== 'ensure' && mode !== 'pull')) {
  process.stderr.write('usage: pull-child.ts ensure|pull NAME\n');
  process.exit(2);
}
try {
  if (mode === 'ensure') {
    const onEvent = (event: { type: string }) => {
      if (event.type === 'waiting') process.stdout.write(`${JSON.stringify({ waiting: true })}\n`);
    };
    // Started together: each child waits for a line on stdin before it calls ensure().
    if (process.env['KILN_TEST_WAIT_FOR_GO'] === '1') {
      process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
      await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
      process.stdin.pause();
    }
    process.stdout.write(`${JSON.stringify({ path: await ensure(name, { onEvent }) })}\n`);
  } else {
    const store = ModelStore.fromSettings(readModelsSettings(process.env));
    const report = await store.pull([name], { onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`) });
    if (report.failures.length > 0) throw report.failures[0]!.error;
    process.stdout.write(`${JSON.stringify({ done: report.results[0]?.outcome })}\n`);
  }
} catch (error) {
  process.stderr.write(`${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n`);
  process.exitCode = 1;
}
