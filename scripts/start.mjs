// `npm start`: until the gateway lands, run the echo worker in its local API mode
// (RunPod's endpoint API served by the worker process itself).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const port = process.argv[2] ?? '8000';
process.stderr.write(
  [
    'kiln: the gateway is not built yet, so `npm start` runs the echo worker in its local API mode.',
    `Try:  curl -s -X POST http://127.0.0.1:${port}/runsync -H 'content-type: application/json' -d '{"input":{"message":"hello"}}'`,
    `      curl -s -X POST http://127.0.0.1:${port}/run -d '{"input":{"message":"slow","sleepMs":3000,"progressSteps":3}}'  # then GET /status/<id>`,
    '',
  ].join('\n'),
);
const child = spawn(
  process.execPath,
  [path.join(root, 'packages/cli/bin/kiln.js'), 'worker', path.join(root, 'examples/echo/src/worker.ts'), '--serve-api', '--port', port],
  { stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
