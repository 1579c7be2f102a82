// The dashboard's Models page in Debian's Chromium against a real `kiln serve` (child process) with
// a models manifest: a model whose files were deleted from the volume shows as missing, and its
// Pull button brings it back to verified, with progress shown while it runs.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ModelsResponse } from '@kiln/protocol';
import { startKilnServer, stopChild, type KilnServer } from './support/child-process.ts';
import { browserGate, launchChromium, saveScreenshot, type TestBrowser } from './support/browser.ts';

const MODEL = 'big-weights';
/** Large enough that a pull lasts a few progress intervals (copy and sha256 of 96 MiB). */
const SIZE = 96 * 1024 * 1024;

const gate = browserGate();

describe('dashboard models page in Chromium', { skip: gate.skip }, () => {
  let dir: string;
  let server: KilnServer | undefined;
  let url: string;
  let chromium: TestBrowser;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-dashboard-models-'));
    const weights = randomBytes(SIZE);
    await writeFile(path.join(dir, 'weights.bin'), weights);
    const config = {
      endpoints: { tiny: { worker: { command: 'node never-started.js' }, models: [MODEL] } },
      models: { [MODEL]: { source: 'file:weights.bin', sha256: createHash('sha256').update(weights).digest('hex'), size: SIZE } },
    };
    await writeFile(path.join(dir, 'kiln.config.json'), JSON.stringify(config));
    server = await startKilnServer({ args: ['serve', '--port', '0'], cwd: dir, env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1' }, ready: /kiln serve: ready/, timeoutMs: 60_000 });
    url = server.url;
    chromium = await launchChromium();
  });

  after(async () => {
    await chromium?.close();
    if (server) await stopChild(server.child);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('a model deleted from the volume shows missing; Pull shows progress and ends verified', async () => {
    const listed = (await (await fetch(`${url}/kiln/v1/models`)).json()) as ModelsResponse;
    assert.equal(listed.models[0]?.status, 'verified', 'kiln serve pulled it at start-up');
    // Someone cleans the volume.
    await rm(path.join(listed.volume, MODEL), { recursive: true, force: true });

    const page = await chromium.browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(30_000);
    try {
      await page.goto(`${url}/#/models`);
      const row = page.locator(`tr[data-model="${MODEL}"]`);
      await row.getByText('missing').first().waitFor();
      // Whether a progress bar for this model ever appears, recorded by the page itself.
      await page.evaluate(`(() => {
        window.__sawProgress = false;
        new MutationObserver(() => {
          if (document.querySelector('progress')) window.__sawProgress = true;
        }).observe(document.body, { subtree: true, childList: true, attributes: true });
      })()`);
      await page.getByRole('button', { name: `Pull ${MODEL}` }).click();
      await row.getByText('verified').first().waitFor();
      assert.equal(await page.evaluate('window.__sawProgress'), true, 'a progress bar was shown during the pull');
      const after = (await (await fetch(`${url}/kiln/v1/models`)).json()) as ModelsResponse;
      assert.deepEqual(
        { status: after.models[0]?.status, bytes: after.models[0]?.bytes, pull: after.models[0]?.pull },
        { status: 'verified', bytes: SIZE, pull: null },
      );
      await saveScreenshot(page, 'dashboard-models');
    } finally {
      await page.close();
    }
  });
});
