// @kiln/client must run in browsers: nothing index.ts loads (its own files and @kiln/protocol's)
// may import a Node module or use Node-only globals.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
const NODE_ONLY = /\b(process\.|Buffer\b|require\(|__dirname|setImmediate\()/;

/** Every file index.ts reaches through runtime imports, with what each imports. */
function reachable(entry: string): Map<string, string[]> {
  const files = new Map<string, string[]>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    const source = readFileSync(file, 'utf8');
    const specifiers = [...source.matchAll(IMPORT)].map((m) => (m[1] ?? m[2])!);
    files.set(file, specifiers);
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) queue.push(path.resolve(path.dirname(file), specifier));
      else if (specifier === '@kiln/protocol') queue.push(fileURLToPath(import.meta.resolve('@kiln/protocol')));
    }
  }
  return files;
}

test('everything index.ts loads imports only its own files and @kiln/protocol, and uses no Node-only globals', () => {
  const files = reachable(fileURLToPath(new URL('./index.ts', import.meta.url)));
  assert.ok([...files.keys()].some((f) => f.endsWith(path.join('protocol', 'src', 'webhook-signature.ts'))), 'the walk reaches @kiln/protocol');
  for (const [file, specifiers] of files) {
    for (const specifier of specifiers) {
      assert.ok(specifier.startsWith('.') || specifier === '@kiln/protocol', `${file} imports ${specifier}`);
    }
    // ManualClock (a test helper in @kiln/protocol's clock.ts) uses setImmediate; the client never calls it.
    if (file.endsWith(path.join('protocol', 'src', 'clock.ts'))) continue;
    const code = readFileSync(file, 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
    assert.doesNotMatch(code, NODE_ONLY, `${file} uses a Node-only global`);
  }
});
