/** A loopback S3 server for tests (s3rver, a devDependency: loaded only when started). */
export interface LoopbackS3 {
  /** `http://127.0.0.1:<port>`: the endpoint to configure (path-style addressing). */
  readonly endpoint: string;
  close(): Promise<void>;
}

/**
 * Starts s3rver on 127.0.0.1 with `buckets` created, storing objects under `directory`. Any access
 * key is accepted (`S3RVER` / `S3RVER` is its documented pair).
 *
 * @example
 * const s3 = await startLoopbackS3({ directory: tmp, buckets: ['weights'] });
 */
export async function startLoopbackS3(options: { directory: string; buckets: readonly string[] }): Promise<LoopbackS3> {
  const { default: S3rver } = await import('s3rver');
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: options.directory, configureBuckets: options.buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  return { endpoint: `http://127.0.0.1:${port}`, close: () => server.close() };
}
