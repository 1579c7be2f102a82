import { randomUUID } from 'node:crypto';
import { realClock, signWebhook, type Clock, type WebhookEvent } from '@kiln/protocol';
import type { WebhookSettings } from './config.ts';
import type { JobRecord, JobStore, WebhookDelivery } from './job-store.ts';
import { toStatusObject } from './status-view.ts';

/** How often the outbox is read when nothing wakes the dispatcher. */
export const WEBHOOK_POLL_MS = 1000;
/** Most webhook calls in flight at once, per gateway. */
export const WEBHOOK_CONCURRENCY = 16;
/** Delivered deliveries stay listed this long, then are pruned (failed ones are kept). */
export const DELIVERED_WEBHOOK_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
/** A claimed attempt's lease runs this long past its timeout: then another gateway may retry it. */
const LEASE_MARGIN_MS = 30_000;
const PRUNE_EVERY_MS = 60 * 60 * 1000;
/** Finished jobs turned into `completed` deliveries per store read. */
const CATCH_UP_BATCH = 100;
/**
 * Most rounds only look at jobs finished this recently, so that a round costs what finished since,
 * not every job kept; a full look (at start, then every few minutes) finds the rest, such as jobs
 * stamped by a gateway whose clock is behind. Nothing is lost meanwhile: a job that owes its call is
 * not deleted.
 */
const CATCH_UP_WINDOW_MS = 60_000;
const FULL_CATCH_UP_EVERY_MS = 5 * 60_000;
/** How much of a refusing receiver's answer is kept as the delivery's `lastError`. */
const ERROR_BODY_CHARS = 200;
const USER_AGENT = 'kiln-gateway';

/** The events sent while a job runs (the `completed` one is the outbox catch-up's). */
export type RunningJobEvent = Exclude<WebhookEvent, 'completed'>;

/** What the dispatcher works with. */
export interface WebhookDispatcherOptions {
  store: JobStore;
  settings: WebhookSettings;
  log: { info(message: string, fields?: object): void; warn(message: string, fields?: object): void; error(message: string, fields?: object): void };
  /** Times, retry delays and the per-call timeout. Default: the real clock. */
  clock?: Clock;
}

/**
 * The body of a webhook call: the job's status object as `GET /status` shows it, plus `input` and
 * `webhook` (RunPod's envelope, PROTOCOL.md §3.4); events other than `completed` add `event`, and
 * `output` adds the chunks it announces as `stream: [{ output }]`.
 *
 * @example
 * webhookBody(job, 'completed', clock.now()); // '{"id":"…","status":"COMPLETED",…,"input":{…},"webhook":"https://…"}'
 */
export function webhookBody(job: JobRecord, event: WebhookEvent, now: number, stream?: readonly unknown[]): string {
  const body: Record<string, unknown> = { ...toStatusObject(job, now), input: job.input, webhook: job.webhook };
  if (event !== 'completed') body.event = event;
  // `/stream`'s item shape: the chunks this `output` call announces.
  if (stream !== undefined) body.stream = stream.map((output) => ({ output }));
  return JSON.stringify(body);
}

/**
 * Sends job webhooks from the store's outbox: signed with Standard Webhooks headers when a secret
 * is configured, cut off after `timeoutMs`, retried on a non-2xx answer or no answer after
 * `initialDelayMs × backoffFactor^(attempt − 1)`, and marked `failed` (kept, listed by the admin
 * API) once `maxAttempts` have failed. Each round first turns finished jobs that still owe their
 * `completed` call into deliveries (the catch-up: it needs no in-memory hook, so a crash right
 * after a job ends loses nothing), then claims due deliveries. Several gateways may share one
 * database: claims are exclusive, and a gateway that dies mid-call leaves a lease that runs out.
 *
 * @example
 * const webhooks = new WebhookDispatcher({ store, settings: config.gateway.webhooks, log, clock });
 * webhooks.start();
 * // a worker took a job:
 * await webhooks.jobEvent(job, 'start');
 * // on shutdown:
 * await webhooks.stop();
 */
export class WebhookDispatcher {
  readonly #store: JobStore;
  readonly #settings: WebhookSettings;
  readonly #log: WebhookDispatcherOptions['log'];
  readonly #clock: Clock;
  readonly #inFlight = new Set<Promise<void>>();
  #stopping = new AbortController();
  #warnedUnsigned = false;
  #nap = new AbortController();
  #loop: Promise<void> | undefined;
  #lastPrune = Number.NEGATIVE_INFINITY;
  #lastFullCatchUp = Number.NEGATIVE_INFINITY;

  constructor(options: WebhookDispatcherOptions) {
    this.#store = options.store;
    this.#settings = options.settings;
    this.#log = options.log;
    this.#clock = options.clock ?? realClock;
  }

  /** Starts sending: a round now, then one every {@link WEBHOOK_POLL_MS} or sooner when woken. */
  start(): void {
    if (this.#loop) return;
    this.#stopping = new AbortController();
    this.#loop = this.#run(this.#stopping.signal);
  }

  /** Stops the rounds and cuts off calls in flight; their attempts are given back to the outbox, due at once. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#nap.abort();
    await this.#loop;
    this.#loop = undefined;
    await Promise.all([...this.#inFlight]);
  }

  /** Runs a round soon instead of at the next poll. */
  wake(): void {
    this.#nap.abort();
  }

  /**
   * One round, awaited to the end: queues the `completed` deliveries finished jobs owe, claims the
   * due deliveries and makes one attempt at each. Tests drive the dispatcher with this and a manual clock.
   */
  async tick(): Promise<void> {
    await this.#round();
    await Promise.all([...this.#inFlight]);
  }

  /**
   * Queues a `start`, `progress` or `output` call for a running job when its request asked for
   * that event (`webhookEvents`); a no-op otherwise. The body is the job as given (IN_PROGRESS:
   * `output` is its last progress value) plus `"event"`. Never throws: a store failure is logged
   * and the event dropped. Resolves with whether a delivery was queued.
   */
  async jobEvent(job: JobRecord, event: RunningJobEvent, stream?: readonly unknown[]): Promise<boolean> {
    if (job.webhook === null || !job.webhookEvents.includes(event)) return false;
    const now = this.#clock.now();
    try {
      await this.#store.addWebhookDelivery({
        id: newDeliveryId(),
        jobId: job.id,
        jobRun: job.retries,
        endpoint: job.endpoint,
        event,
        url: job.webhook,
        payload: webhookBody(job, event, now, event === 'output' ? (stream ?? []) : undefined),
        createdAt: now,
      });
    } catch (err) {
      this.#log.error(`could not queue the ${event} webhook of job ${job.id}: ${describeError(err)}`, { jobId: job.id, event });
      return false;
    }
    this.wake();
    return true;
  }

  async #run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      this.#nap = new AbortController();
      try {
        await this.#round();
      } catch (err) {
        this.#log.error(`webhook round failed: ${describeError(err)}`);
      }
      if (signal.aborted) break;
      await this.#clock.sleep(WEBHOOK_POLL_MS, this.#nap.signal);
    }
  }

  async #round(): Promise<void> {
    const signal = this.#stopping.signal;
    await this.#catchUp();
    await this.#prune();
    const free = WEBHOOK_CONCURRENCY - this.#inFlight.size;
    if (free <= 0 || signal.aborted) return;
    const now = this.#clock.now();
    const due = await this.#store.claimWebhookDeliveries(now, free, now + this.#settings.timeoutMs + LEASE_MARGIN_MS);
    for (const delivery of due) {
      const attempt: Promise<void> = this.#attempt(delivery)
        .catch((err: unknown) => this.#log.error(`webhook ${delivery.id} of job ${delivery.jobId}: ${describeError(err)}`, { jobId: delivery.jobId }))
        .finally(() => {
          this.#inFlight.delete(attempt);
          // A full house left due deliveries waiting: there is room again.
          if (due.length === free) this.wake();
        });
      this.#inFlight.add(attempt);
    }
  }

  /** Finished jobs that owe their `completed` call get it in the outbox (a copy of the job as it ended). */
  async #catchUp(): Promise<void> {
    const now = this.#clock.now();
    const full = now - this.#lastFullCatchUp >= FULL_CATCH_UP_EVERY_MS;
    if (full) this.#lastFullCatchUp = now;
    const since = full ? Number.MIN_SAFE_INTEGER : now - CATCH_UP_WINDOW_MS;
    for (;;) {
      const owing = await this.#store.jobsOwingWebhook(since, CATCH_UP_BATCH);
      for (const job of owing) {
        await this.#store.addWebhookDelivery({
          id: newDeliveryId(),
          jobId: job.id,
          jobRun: job.retries,
          endpoint: job.endpoint,
          event: 'completed',
          url: job.webhook ?? '',
          payload: webhookBody(job, 'completed', now),
          createdAt: now,
        });
      }
      // Each batch leaves the outbox owing less, so the next read starts where this one stopped.
      if (owing.length < CATCH_UP_BATCH) return;
    }
  }

  async #prune(): Promise<void> {
    const now = this.#clock.now();
    if (now - this.#lastPrune < PRUNE_EVERY_MS) return;
    this.#lastPrune = now;
    const pruned = await this.#store.pruneWebhookDeliveries(now - DELIVERED_WEBHOOK_RETENTION_MS);
    if (pruned > 0) this.#log.info(`pruned ${pruned} delivered webhook(s) older than ${DELIVERED_WEBHOOK_RETENTION_MS / 86_400_000} days`);
  }

  /** One POST of a claimed delivery, and its report to the store. */
  async #attempt(delivery: WebhookDelivery): Promise<void> {
    const { id, jobId, attempts: attempt } = delivery;
    const stopping = this.#stopping.signal;
    if (stopping.aborted) {
      await this.#store.releaseWebhookDelivery(id, attempt, this.#clock.now());
      return;
    }
    const call = new AbortController();
    const settled = new AbortController();
    let timedOut = false;
    const cutOff = () => call.abort();
    stopping.addEventListener('abort', cutOff, { once: true });
    void this.#clock.sleep(this.#settings.timeoutMs, settled.signal).then(() => {
      if (settled.signal.aborted) return;
      timedOut = true;
      call.abort();
    });
    let outcome: { status: number; text: string } | { error: unknown };
    try {
      const response = await fetch(delivery.url, {
        method: 'POST',
        body: delivery.payload,
        headers: await this.#headers(delivery),
        signal: call.signal,
        redirect: 'manual',
      });
      // The status is the receiver's answer; a body cut short (timeout, stop) does not undo it.
      outcome = { status: response.status, text: await readStart(response, ERROR_BODY_CHARS).catch(() => '') };
    } catch (error) {
      outcome = { error };
    } finally {
      settled.abort();
      stopping.removeEventListener('abort', cutOff);
    }

    const now = this.#clock.now();
    if ('status' in outcome && outcome.status >= 200 && outcome.status < 300) {
      if (await this.#store.markWebhookDelivered(id, attempt, now, outcome.status)) {
        this.#log.info(`webhook ${id} (${delivery.event}) of job ${jobId} delivered on attempt ${attempt}: HTTP ${outcome.status}`, {
          jobId,
          deliveryId: id,
          status: outcome.status,
        });
      }
      return;
    }
    if (!timedOut && stopping.aborted) {
      await this.#store.releaseWebhookDelivery(id, attempt, now);
      return;
    }
    const cause =
      'status' in outcome
        ? `HTTP ${outcome.status}${outcome.text === '' ? '' : `: ${outcome.text}`}`
        : timedOut
          ? `no answer within ${this.#settings.timeoutMs} ms`
          : describeError(outcome.error);
    await this.#failed(delivery, now, cause, 'status' in outcome ? outcome.status : null);
  }

  async #failed(delivery: WebhookDelivery, now: number, cause: string, httpStatus: number | null): Promise<void> {
    const { id, jobId, attempts: attempt } = delivery;
    const { maxAttempts, initialDelayMs, backoffFactor } = this.#settings;
    const delayMs = Math.round(initialDelayMs * backoffFactor ** (attempt - 1));
    const after = await this.#store.markWebhookAttemptFailed(id, attempt, { error: cause, httpStatus, retryAt: now + delayMs, maxAttempts });
    if (!after) return;
    const fields = { jobId, deliveryId: id, url: delivery.url, event: delivery.event, attempt, error: cause, httpStatus };
    if (after.state === 'failed') {
      this.#log.error(`webhook ${id} (${delivery.event}) of job ${jobId} failed for good after ${attempt} attempt(s): ${cause}`, fields);
    } else {
      this.#log.warn(`webhook ${id} (${delivery.event}) of job ${jobId} failed (attempt ${attempt} of ${maxAttempts}): ${cause}; next try in ${delayMs} ms`, fields);
    }
  }

  // At the first unsigned call rather than at start: most local runs never send a webhook.
  #warnUnsignedOnce(): void {
    if (this.#warnedUnsigned) return;
    this.#warnedUnsigned = true;
    this.#log.warn(
      'webhooks are sent unsigned: set gateway.webhooks.secret in the config or the KILN_WEBHOOK_SECRET environment variable ' +
        'to a Standard Webhooks secret, e.g. whsec_$(openssl rand -base64 32), so that receivers can check them with verifyWebhook',
    );
  }

  async #headers(delivery: WebhookDelivery): Promise<Record<string, string>> {
    // The send time of this attempt: receivers refuse stale timestamps, so a retry is stamped anew.
    const timestamp = Math.floor(this.#clock.now() / 1000);
    const { secret } = this.#settings;
    if (secret === undefined) this.#warnUnsignedOnce();
    const signed =
      secret === undefined
        ? { 'webhook-id': delivery.id, 'webhook-timestamp': String(timestamp) }
        : await signWebhook(secret, { id: delivery.id, timestamp, body: delivery.payload });
    return { 'content-type': 'application/json', 'user-agent': USER_AGENT, ...signed };
  }
}

function newDeliveryId(): string {
  return `msg_${randomUUID().replaceAll('-', '')}`;
}

/** The first `chars` characters of an answer's body (then the rest is dropped, not read). */
async function readStart(response: Response, chars: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length < chars) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return text.slice(0, chars).replace(/\s+/g, ' ').trim();
}

/** An error as one line, with fetch's underlying cause (`connect ECONNREFUSED …`) when it has one. */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return cause ? `${err.message}: ${cause}` : err.message;
}
