import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tfconv from '@tensorflow/tfjs-converter';
import * as tf from '@tensorflow/tfjs-core';

/** Long side of the frame RVM's coarse pass sees, by default. */
export const COARSE_SIDE = 128;

/** RVM's recurrent state: four feature maps carried from one frame to the next. */
type Recurrent = [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];

let backendReady: Promise<void> | undefined;

/** Selects tfjs's WebAssembly backend once per process, its .wasm files read from the installed package. */
function useWasmBackend(): Promise<void> {
  backendReady ??= (async () => {
    const dist = path.join(path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
    setWasmPaths(`${dist}${path.sep}`);
    if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend did not initialise');
    await tf.ready();
  })();
  return backendReady;
}

/**
 * Robust Video Matting on tfjs-wasm: turns RGB frames into alpha mattes, one frame at a time, its
 * recurrent state carried across the frames of one clip. Start each clip with {@link RvmMatting.startClip}.
 *
 * @example
 * const rvm = await RvmMatting.load(graphFile, weightsFile);
 * const clip = rvm.startClip();
 * for (const frame of frames) mattes.push(await clip.matte(frame, width, height));
 * clip.dispose();
 */
export class RvmMatting {
  readonly #model: tfconv.GraphModel;

  private constructor(model: tfconv.GraphModel) {
    this.#model = model;
  }

  /**
   * Loads Robust Video Matting (MobileNetV3, a TF.js graph model): `graphFile` is its `rvm.json`
   * (topology and weight manifest), `weightsFile` its `rvm.bin`. Warms the graph up on one small frame.
   */
  static async load(graphFile: string, weightsFile: string): Promise<RvmMatting> {
    await useWasmBackend();
    const [graphText, weights] = await Promise.all([readFile(graphFile, 'utf8'), readFile(weightsFile)]);
    const graph = JSON.parse(graphText) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[]; signature?: object; format?: string };
    const artifacts: tf.io.ModelArtifacts = {
      modelTopology: graph.modelTopology,
      weightSpecs: graph.weightsManifest.flatMap((group) => group.weights),
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      ...(graph.signature === undefined ? {} : { signature: graph.signature }),
      ...(graph.format === undefined ? {} : { format: graph.format }),
    };
    const model = await tfconv.loadGraphModel(tf.io.fromMemory(artifacts));
    const rvm = new RvmMatting(model);
    const clip = rvm.startClip();
    await clip.matte(new Uint8Array(64 * 64 * 3), 64, 64);
    clip.dispose();
    return rvm;
  }

  /** A fresh recurrent state for a new clip. */
  startClip(): RvmClip {
    return new RvmClip(this.#model);
  }
}

/** One clip being matted: frames must come in order, all of the same size. */
export class RvmClip {
  readonly #model: tfconv.GraphModel;
  #state: Recurrent;

  /** @internal Use {@link RvmMatting.startClip}. */
  constructor(model: tfconv.GraphModel) {
    this.#model = model;
    // RVM's documented initial state: scalar zeros, which the graph broadcasts on the first frame.
    this.#state = [tf.scalar(0), tf.scalar(0), tf.scalar(0), tf.scalar(0)];
  }

  /**
   * The alpha matte of one RGB24 frame: one byte per pixel, 255 where the model sees foreground.
   * `downsampleRatio` scales the frame for the model's coarse pass (a refiner brings the matte back to
   * full size); the default, about 128 px on the long side, is 3× faster than 1.0 at 256² on tfjs-wasm
   * and kept the test clip's figure fully covered.
   */
  async matte(rgb: Uint8Array, width: number, height: number, downsampleRatio = Math.min(1, COARSE_SIDE / Math.max(width, height))): Promise<Uint8Array> {
    if (rgb.length !== width * height * 3) throw new RangeError(`a frame must be ${width * height * 3} bytes, not ${rgb.length}`);
    const scaled = new Float32Array(rgb.length);
    for (let i = 0; i < rgb.length; i++) scaled[i] = rgb[i]! / 255;
    const src = tf.tensor4d(scaled, [1, height, width, 3]);
    const ratio = tf.scalar(downsampleRatio);
    const [r1i, r2i, r3i, r4i] = this.#state;
    // The graph has control flow (Merge/Switch on the downsample ratio), which only executeAsync runs.
    const outputs = (await this.#model.executeAsync({ src, 'r1i:0': r1i, 'r2i:0': r2i, 'r3i:0': r3i, 'r4i:0': r4i, 'downsample_ratio:0': ratio }, ['pha', 'r1o', 'r2o', 'r3o', 'r4o', 'fgr'])) as tf.Tensor[];
    const [pha, r1o, r2o, r3o, r4o, fgr] = outputs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
    tf.dispose([src, ratio, fgr, ...this.#state]);
    this.#state = [r1o, r2o, r3o, r4o];
    const alpha = await pha.data();
    pha.dispose();
    const matte = new Uint8Array(width * height);
    for (let i = 0; i < matte.length; i++) matte[i] = Math.round(Math.min(1, Math.max(0, alpha[i]!)) * 255);
    return matte;
  }

  /** Frees the recurrent state. */
  dispose(): void {
    tf.dispose(this.#state);
  }
}
