import { after, before, beforeEach } from 'node:test';
import { LoopbackJobServer, type LoopbackJobServerOptions } from './loopback-job-server.ts';

/**
 * Registers node:test hooks for one {@link LoopbackJobServer} shared by a test file: started before
 * the tests, reset before each (after a previous worker's aborted long-poll is gone, so it cannot be
 * handed a job), stopped after. Returns a getter for the server.
 *
 * @example
 * const server = useLoopbackServer();
 * test('…', async () => { server().enqueue({ id: 'j1', input: {} }); });
 */
export function useLoopbackServer(options: LoopbackJobServerOptions = { holdMs: 300 }): () => LoopbackJobServer {
  const server = new LoopbackJobServer(options);
  before(() => server.start());
  after(() => server.stop());
  beforeEach(async () => {
    await server.waitFor(() => server.heldTakes === 0, 5000, 'no held takes');
    server.reset();
  });
  return () => server;
}
