// The dashboard in Debian's Chromium (playwright-core) against a real gateway serving the built
// files, with real echo worker processes: the key prompt, the endpoints page, a job submitted from
// the Run form and watched to the end, an audio output shown as a player, a long job cancelled
// from its detail page, a job's detail, live rows, keyboard navigation and labels. Screenshots
// go to test-artifacts/ (CI keeps them).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { BrowserContext, Page } from 'playwright-core';
import { kiln, type KilnEndpoint } from '@kiln/client';
import { dashboardDir } from '@kiln/dashboard';
import { Gateway, parseConfig } from '@kiln/gateway';
import { encodeWav } from '../examples/tts/src/wav.ts';
import { browserGate, launchChromium, saveScreenshot, type TestBrowser } from './support/browser.ts';
import { ECHO_DIR, ECHO_SOURCE_COMMAND, type EchoInput } from './support/echo-worker.ts';

const API_KEY = 'dashboard-key';
/** Playwright's waits: generous, because two cores run this beside other test files. */
const WAIT_MS = 30_000;

/** A real 0.1 s, 8 kHz, 16-bit mono WAV of a 440 Hz tone (written by the tts example's encoder). */
function toneWav(): Buffer {
  const sampleRate = 8000;
  const samples = Int16Array.from({ length: sampleRate / 10 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / sampleRate)));
  return encodeWav({ sampleRate, samples });
}

const gate = browserGate();

describe('dashboard in Chromium', { skip: gate.skip }, () => {
  let dir: string;
  let gateway: Gateway;
  let chromium: TestBrowser;
  let context: BrowserContext;
  let echo: KilnEndpoint<EchoInput, { message: string }, { word: string }>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-dashboard-'));
    const config = parseConfig(
      {
        endpoints: { echo: { worker: { command: ECHO_SOURCE_COMMAND, cwd: ECHO_DIR }, workersMin: 1, workersMax: 2, idleTimeout: 60 } },
        gateway: { port: 0, apiKeys: [API_KEY], pingIntervalMs: 1000, stopGraceMs: 2000 },
      },
      { baseDir: dir, env: {} },
    );
    gateway = new Gateway(config, { tickMs: 100, log: { info() {}, warn() {}, error() {} }, dashboardDir });
    await gateway.start();
    echo = kiln({ baseUrl: `${gateway.url}/v2`, apiKey: API_KEY }).endpoint('echo');
    chromium = await launchChromium();
    context = await chromium.browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(WAIT_MS);
    const deadline = Date.now() + 30_000;
    while ((await echo.health()).workers.idle < 1) {
      if (Date.now() > deadline) assert.fail('the echo worker did not become ready');
      await delay(50);
    }
  });

  after(async () => {
    await context?.close();
    await chromium?.close();
    await gateway?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A page that already holds the API key (as after the key prompt). */
  async function signedInPage(): Promise<Page> {
    const page = await context.newPage();
    await page.addInitScript(`sessionStorage.setItem('kiln.apiKey', ${JSON.stringify(API_KEY)})`);
    return page;
  }

  test('asks for the API key, then shows the echo endpoint with its idle worker', async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${gateway.url}/`);
      const key = page.getByLabel('API key');
      await key.fill('wrong-key');
      await key.press('Enter');
      // A wrong key is refused: the prompt stays.
      await page.getByText(/refused|invalid|wrong|401/i).first().waitFor();
      await key.fill(API_KEY);
      await key.press('Enter');
      const card = page.getByRole('region', { name: 'Endpoint echo' });
      await card.waitFor();
      await card.getByText(/idle/i).first().waitFor();
      assert.equal(await page.getByLabel('API key').count(), 0, 'the prompt is gone once the key is accepted');
      await saveScreenshot(page, 'dashboard-endpoints');
    } finally {
      await page.close();
    }
  });

  test('Run form: an echo job submitted from the generated form is watched live to COMPLETED with its output', async () => {
    const page = await signedInPage();
    try {
      await page.goto(`${gateway.url}/#/run?endpoint=echo`);
      await page.getByLabel(/message/i).first().fill('hello from the browser');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      const result = page.getByRole('region', { name: 'Result' });
      await result.locator('.status', { hasText: 'COMPLETED' }).waitFor();
      await result.getByText('hello from the browser').first().waitFor();
      const id = (await result.locator('a.mono').first().textContent())?.trim();
      assert.ok(id, 'the result names the job');
      const job = await echo.status(id);
      assert.equal(job.status, 'COMPLETED');
      assert.deepEqual((job.output as { message: string }).message, 'hello from the browser');
      await saveScreenshot(page, 'dashboard-run');
    } finally {
      await page.close();
    }
  });

  test('media: a base64 WAV in the output is shown as an audio player that Chromium decodes, not as text', async () => {
    const page = await signedInPage();
    try {
      const wav = toneWav();
      await page.goto(`${gateway.url}/#/run?endpoint=echo`);
      await page.getByLabel(/message/i).first().fill(wav.toString('base64'));
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      const result = page.getByRole('region', { name: 'Result' });
      await result.locator('.status', { hasText: 'COMPLETED' }).waitFor();
      const audio = result.locator('audio');
      await audio.waitFor();
      // Chromium parsed the WAV: its duration is the tone's 0.1 s.
      await page.waitForFunction(`document.querySelector('audio')?.readyState >= 1`);
      const duration = (await page.evaluate(`document.querySelector('audio').duration`)) as number;
      assert.ok(Math.abs(duration - 0.1) < 0.01, `audio duration ${duration} s`);
    } finally {
      await page.close();
    }
  });

  test('cancel: a long job opened from the Run result is cancelled from its detail page and ends CANCELLED', async () => {
    const page = await signedInPage();
    try {
      await page.goto(`${gateway.url}/#/run?endpoint=echo`);
      await page.getByLabel(/message/i).first().fill('a long one');
      await page.getByLabel(/sleep/i).first().fill('60000');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      const result = page.getByRole('region', { name: 'Result' });
      await result.locator('.status', { hasText: 'IN_PROGRESS' }).waitFor();
      const link = result.locator('a.mono').first();
      const id = (await link.textContent())!.trim();
      await link.click();
      await page.getByRole('heading', { level: 1, name: new RegExp(id) }).waitFor();
      // Cancel is offered while the job runs (the page enables it once it has read the job).
      const cancel = page.getByRole('button', { name: 'Cancel', disabled: false });
      await cancel.waitFor();
      await cancel.click();
      await page.locator('.status', { hasText: 'CANCELLED' }).first().waitFor();
      assert.equal((await echo.status(id)).status, 'CANCELLED');
      // Nothing left to cancel; and, as on RunPod, /retry is for FAILED and TIMED_OUT jobs only.
      await page.getByRole('button', { name: 'Cancel', disabled: true }).waitFor();
      await page.getByRole('button', { name: 'Retry', disabled: true }).waitFor();
    } finally {
      await page.close();
    }
  });

  test("job detail: a finished streaming job shows its timeline, worker, input, stream chunks and this job's log lines", async () => {
    const submitted = await echo.run({ message: 'alpha beta gamma', stream: true, sleepMs: 30 });
    const done = await echo.waitFor(submitted.id);
    assert.equal(done.status, 'COMPLETED');
    const page = await signedInPage();
    try {
      await page.goto(`${gateway.url}/#/jobs/${submitted.id}?endpoint=echo`);
      await page.getByRole('heading', { level: 1, name: new RegExp(submitted.id) }).waitFor();
      await page.locator('.status', { hasText: 'COMPLETED' }).first().waitFor();
      const timeline = page.getByRole('region', { name: /timeline/i });
      await timeline.getByText(String(done.workerId)).first().waitFor();
      // Input and output are collapsible: open the input.
      const io = page.getByRole('region', { name: /input/i });
      await io.locator('summary', { hasText: /input/i }).first().click();
      await io.getByText('alpha beta gamma').first().waitFor();
      const chunks = page.getByRole('region', { name: /chunks/i });
      for (const word of ['alpha', 'beta', 'gamma']) await chunks.getByText(word).first().waitFor();
      // The worker's own log line for this job, captured by the gateway and tagged with the job id.
      await page.getByRole('region', { name: /log/i }).getByText('echoing 16 characters as a stream').first().waitFor();
      await saveScreenshot(page, 'dashboard-job');
    } finally {
      await page.close();
    }
  });

  test('jobs page: a job submitted elsewhere appears and turns COMPLETED without a reload', async () => {
    const page = await signedInPage();
    try {
      await page.goto(`${gateway.url}/#/jobs?endpoint=echo`);
      await page.locator('table caption').waitFor();
      await page.evaluate(`window.__sameDocument = true`);
      const submitted = await echo.run({ message: 'live row', sleepMs: 300 });
      const row = page.locator(`tr[data-job-id="${submitted.id}"]`);
      await row.waitFor();
      await row.locator('.status', { hasText: 'COMPLETED' }).waitFor();
      assert.equal(await page.evaluate(`window.__sameDocument === true`), true, 'the page was not reloaded');
      await saveScreenshot(page, 'dashboard-jobs');
    } finally {
      await page.close();
    }
  });

  test("endpoint page: the queue chart, and each worker's state, cold start split, and log tail", async () => {
    const page = await signedInPage();
    try {
      await page.goto(`${gateway.url}/#/endpoints/echo`);
      await page.getByRole('heading', { level: 1, name: /echo/ }).waitFor();
      // uPlot draws on a canvas inside the chart's card.
      await page.getByRole('region', { name: /queue and workers/i }).locator('canvas').first().waitFor();
      const workers = page.getByRole('region', { name: 'Workers' });
      const row = workers.locator('tr[data-worker-id]').first();
      await row.waitFor();
      const workerId = (await row.getAttribute('data-worker-id'))!;
      const listed = (await (await fetch(`${gateway.url}/kiln/v1/endpoints/echo/workers`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as {
        workers: { workerId: string; state: string; coldStartMs: number | null; setupMs: number | null }[];
      };
      const worker = listed.workers.find((w) => w.workerId === workerId);
      assert.ok(worker, `worker ${workerId} is one the gateway lists`);
      assert.equal(typeof worker.coldStartMs, 'number', 'the worker is past its cold start');
      assert.equal(typeof worker.setupMs, 'number', "the worker's setup time was read from its log");
      await row.getByText(worker.state).first().waitFor();
      const text = await row.innerText();
      assert.match(text, /\d+(\.\d+)? ?(ms|s)/, `the row shows durations: ${text}`);
      await row.getByRole('button', { name: /show log/i }).click();
      // The echo worker's setup() logs this line once per process.
      await workers.getByText('echo worker ready').first().waitFor();
      await saveScreenshot(page, 'dashboard-endpoint');
    } finally {
      await page.close();
    }
  });

  test('jobs page: the status filter, Older/Newer paging through keyset pages, and find by id', async () => {
    const submitted: string[] = [];
    for (let i = 0; i < 30; i++) submitted.push((await echo.run({ message: `page ${i}` })).id);
    const failing = await echo.run({ message: 'x', fail: 'failed on purpose' });
    for (const id of [...submitted, failing.id]) await echo.waitFor(id);
    const page = await signedInPage();
    try {
      await page.goto(`${gateway.url}/#/jobs?endpoint=echo`);
      const rows = page.locator('tr[data-job-id]');
      await page.locator(`tr[data-job-id="${failing.id}"]`).waitFor();
      const first = await rows.evaluateAll((els) => els.map((el) => el.getAttribute('data-job-id')));
      await page.getByRole('button', { name: /older/i }).click();
      await page.locator('table caption', { hasText: 'page 2' }).waitFor();
      const second = await rows.evaluateAll((els) => els.map((el) => el.getAttribute('data-job-id')));
      assert.ok(second.length > 0, 'the second page has jobs');
      assert.deepEqual(second.filter((id) => first.includes(id)), [], 'no job is on both pages');
      await page.getByRole('button', { name: /newer/i }).click();
      await page.locator(`tr[data-job-id="${failing.id}"]`).waitFor();

      await page.getByLabel('Status').selectOption('FAILED');
      await page.locator(`tr[data-job-id="${failing.id}"]`).waitFor();
      const statuses = await page.locator('tr[data-job-id] td.status').allInnerTexts();
      assert.ok(statuses.length >= 1);
      assert.deepEqual([...new Set(statuses.map((t) => t.trim()))], ['FAILED'], 'only FAILED rows');

      await page.getByLabel('Job id').fill(submitted[3]!);
      await page.getByLabel('Job id').press('Enter');
      await page.getByRole('heading', { level: 1, name: new RegExp(submitted[3]!) }).waitFor();
    } finally {
      await page.close();
    }
  });

  test('keyboard and labels: Tab reaches the main navigation and Enter follows it; every form control has a label', async () => {
    const page = await signedInPage();
    try {
      await page.goto(`${gateway.url}/#/jobs?endpoint=echo`);
      await page.locator('table caption').waitFor();
      let onRunLink = false;
      for (let i = 0; i < 40 && !onRunLink; i++) {
        await page.keyboard.press('Tab');
        onRunLink = await page.evaluate(`document.activeElement?.closest('nav[aria-label="Main"]') !== null && document.activeElement?.textContent?.trim() === 'Run'`) as boolean;
      }
      assert.ok(onRunLink, 'the Run link of the main navigation is reachable with Tab');
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { level: 1, name: /run/i }).waitFor();
      assert.match(new URL(page.url()).hash, /^#\/run/);

      // Every visible control of the Run and Jobs pages has an accessible name.
      const unlabelled = `[...document.querySelectorAll('input, select, textarea, button')]
        .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
        .filter((el) => !(el.labels?.length > 0 || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || (el.tagName === 'BUTTON' && el.textContent.trim())))
        .map((el) => el.outerHTML.slice(0, 120))`;
      await page.getByLabel(/message/i).first().waitFor();
      assert.deepEqual(await page.evaluate(unlabelled), [], 'Run page');
      await page.goto(`${gateway.url}/#/jobs?endpoint=echo`);
      await page.locator('table caption').waitFor();
      assert.deepEqual(await page.evaluate(unlabelled), [], 'Jobs page');
      // One h1 per page.
      assert.equal(await page.locator('h1').count(), 1);
    } finally {
      await page.close();
    }
  });
});
