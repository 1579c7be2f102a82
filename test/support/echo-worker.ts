// The echo example as the cross-package tests run it: from its TypeScript source (no build
// needed), and the shapes of its input, output and stream chunks as a client sees them.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The echo worker's folder (its `cwd` in a test config). */
export const ECHO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/echo');
/** The echo worker run from its source through tsx. */
export const ECHO_SOURCE_COMMAND = `${process.execPath} --conditions=kiln-source --import tsx src/worker.ts`;

/** What the echo worker accepts (examples/echo/src/worker.ts). */
export interface EchoInput {
  message: string;
  sleepMs?: number;
  stream?: boolean;
  progressSteps?: number;
  fail?: string;
}
/** What it answers when it does not stream. */
export interface EchoOutput {
  message: string;
  workerId: string;
}
/** One chunk of a streamed answer. */
export interface EchoChunk {
  word: string;
}
