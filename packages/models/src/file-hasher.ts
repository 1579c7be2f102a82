import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** Files at least this large are hashed on a worker thread; smaller ones inline (a thread costs ~10 ms to start). */
export const THREAD_HASH_MIN_BYTES = 16 << 20;
/** The worker is told about newly written bytes in steps of at least this much. */
const THREAD_HASH_STEP_BYTES = 4 << 20;
const READ_CHUNK_BYTES = 1 << 20;

/** Digests of a file being written, from its first byte. */
export interface FileHasher {
  /** A chunk that is about to be written (inline hashers hash it now). */
  update(chunk: Uint8Array): void;
  /** Bytes `[0, end)` are on disk (thread hashers read and hash them from there). */
  written(end: number): void;
  /** The digests of bytes `[0, end)`, once every one of them was hashed. */
  digest(end: number): Promise<{ sha256: string; gitSha1: string | undefined }>;
  /** Stops a thread; the hasher is unusable afterwards. */
  dispose(): void;
}

/**
 * Hashes chunks as they arrive, on the calling thread; resumes by reading back the `prefix` bytes
 * already in `file`. Optionally also git's blob SHA-1 (`blob <size>\0` + content) of a file of
 * `gitSize` bytes.
 */
export async function inlineHasher(file: string, prefix: number, gitSize: number | undefined, signal: AbortSignal): Promise<FileHasher> {
  const sha256: Hash = createHash('sha256');
  const git: Hash | undefined = gitSize === undefined ? undefined : createHash('sha1').update(`blob ${gitSize}\0`);
  if (prefix > 0) {
    for await (const chunk of createReadStream(file, { start: 0, end: prefix - 1, highWaterMark: READ_CHUNK_BYTES, signal })) {
      sha256.update(chunk as Buffer);
      git?.update(chunk as Buffer);
    }
  }
  return {
    update(chunk) {
      sha256.update(chunk);
      git?.update(chunk);
    },
    written() {},
    digest: async () => ({ sha256: sha256.digest('hex'), gitSha1: git?.digest('hex') }),
    dispose() {},
  };
}

// Plain JS run with `eval`: the same code whether this package runs from its sources or from dist/.
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const fd = openSync(workerData.file, 'r');
const hash = createHash('sha256');
const buffer = Buffer.allocUnsafe(${READ_CHUNK_BYTES});
let position = 0;
parentPort.on('message', ({ upTo, done }) => {
  try {
    while (position < upTo) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, upTo - position), position);
      if (n === 0) throw new Error('the file ended at ' + position + ' of ' + upTo + ' bytes while it was being hashed');
      hash.update(buffer.subarray(0, n));
      position += n;
    }
    if (done) {
      closeSync(fd);
      parentPort.postMessage({ sha256: hash.digest('hex') });
    }
  } catch (error) {
    parentPort.postMessage({ error: error.message });
  }
});
`;

/**
 * Hashes a file on a worker thread by reading back what has been written (from the page cache),
 * so that the thread receiving the download does not also spend ~0.6 s per GB hashing it. It
 * starts with the `prefix` a resumed download already had.
 */
export function threadHasher(file: string, prefix: number): FileHasher {
  // execArgv: [] — the thread needs only node's built-ins, not the loaders the process was started with (tsx…).
  const worker = new Worker(HASH_WORKER, { eval: true, execArgv: [], workerData: { file } });
  let told = 0;
  let failure: Error | undefined;
  const settled = new Promise<{ sha256: string }>((resolve, reject) => {
    worker.on('message', (message: { sha256?: string; error?: string }) => {
      if (message.error !== undefined) reject((failure = new Error(message.error)));
      else if (message.sha256 !== undefined) resolve({ sha256: message.sha256 });
    });
    worker.once('error', (error) => reject((failure = error)));
    worker.once('exit', (code) => reject((failure ??= new Error(`the hashing thread exited (${code})`))));
  });
  settled.catch(() => {});
  const tell = (upTo: number, done: boolean) => {
    if (failure === undefined) worker.postMessage({ upTo, done });
  };
  if (prefix > 0) {
    tell(prefix, false);
    told = prefix;
  }
  return {
    update() {},
    written(end) {
      if (end - told < THREAD_HASH_STEP_BYTES) return;
      told = end;
      tell(end, false);
    },
    async digest(end) {
      tell(end, true);
      try {
        const { sha256 } = await settled;
        return { sha256, gitSha1: undefined };
      } finally {
        void worker.terminate();
      }
    },
    dispose() {
      void worker.terminate();
    },
  };
}
