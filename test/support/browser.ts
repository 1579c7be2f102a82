// Chromium for browser tests: Debian's package driven by playwright-core (no browser download).
// In CI (`CI=true`) a missing Chromium fails the tests; elsewhere they are skipped with a message.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where screenshots go (kept by CI as artifacts; ignored by git). */
export const ARTIFACTS_DIR = path.join(ROOT, 'test-artifacts');
/** The Chromium binary: `KILN_TEST_CHROMIUM`, else Debian's. */
export const CHROMIUM_PATH = process.env.KILN_TEST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Flags for a headless Chromium on a machine with no outside network: without the
 * background-networking ones Chromium keeps dialling Google's hosts and logs refusals.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Whether browser tests run; a skip message when they do not (never a skip in CI). */
export function browserGate(): { skip: false } | { skip: string } {
  if (existsSync(CHROMIUM_PATH)) return { skip: false };
  if (process.env.CI === 'true') return { skip: false }; // launch fails loudly: CI must have Chromium (.ci/run installs it)
  return { skip: `no Chromium at ${CHROMIUM_PATH}: install it (apt-get install -y chromium) or set KILN_TEST_CHROMIUM=/path/to/chromium to run the browser tests` };
}

/** A launched Chromium with its own empty profile. */
export interface TestBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/** Launches Debian's Chromium headless (playwright gives it a fresh empty profile and removes it on close). */
export async function launchChromium(): Promise<TestBrowser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  return { browser, close: () => browser.close() };
}

/** Saves a full-page screenshot as `test-artifacts/<name>.png` and returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const file = path.join(ARTIFACTS_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
