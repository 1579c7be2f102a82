// `npm start`: the gateway in development mode with the example endpoints, on an embedded SQLite
// file (examples/.kiln/kiln.db). Extra arguments go to `kiln dev` (e.g. `npm start -- --port 9000`).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const child = spawn(
  process.execPath,
  [path.join(root, 'packages/cli/bin/kiln.js'), 'dev', '--config', path.join(root, 'examples/kiln.config.json'), ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
