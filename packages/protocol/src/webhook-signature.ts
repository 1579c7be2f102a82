// Standard Webhooks signatures (https://www.standardwebhooks.com/): HMAC-SHA256 over
// `${id}.${timestamp}.${body}`, keyed with the base64 part of a `whsec_…` secret. WebCrypto only,
// so the same code runs in Node and in browsers.

/** Prefix of a Standard Webhooks secret; the rest is the base64 HMAC key. */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';
/** Default window (seconds, either side of now) within which `webhook-timestamp` must fall. */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/** The three headers of a signed delivery (a type alias, so it can be passed where a header record is expected). */
export type WebhookHeaders = {
  'webhook-id': string;
  /** Integer Unix seconds, as text. */
  'webhook-timestamp': string;
  /** Space-separated `v1,<base64>` entries. */
  'webhook-signature': string;
};

/** What is signed: the delivery id (the same on every retry), the send time and the exact body. */
export interface WebhookMessage {
  id: string;
  /** Unix seconds. */
  timestamp: number;
  body: string | Uint8Array;
}

/** Why a delivery did not verify. */
export type WebhookVerificationReason = 'invalid-secret' | 'missing-header' | 'invalid-timestamp' | 'stale-timestamp' | 'bad-signature';

/**
 * A webhook failed verification: answer it with 401 and do not act on it. `header` names the
 * header at fault (absent for `invalid-secret`).
 */
export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
  readonly reason: WebhookVerificationReason;
  readonly header: keyof WebhookHeaders | undefined;

  constructor(reason: WebhookVerificationReason, message: string, options?: { header?: keyof WebhookHeaders; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.header = options?.header;
  }
}

/** Headers as `fetch` (`Headers`) or `node:http` (`IncomingHttpHeaders`, lower-case keys) give them. */
export type HeaderSource = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Options of {@link verifyWebhook}. */
export interface VerifyWebhookOptions {
  /** Largest allowed distance between `webhook-timestamp` and now, in seconds. Default 300. */
  toleranceSeconds?: number;
  /** Now, in epoch milliseconds. Default `Date.now()`. */
  now?: number;
}

/**
 * Signs a delivery: returns the three Standard Webhooks headers to send with `body`.
 *
 * @example
 * const body = JSON.stringify(payload);
 * const headers = await signWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', { id: 'msg_1', timestamp: Math.floor(Date.now() / 1000), body });
 * await fetch(url, { method: 'POST', body, headers: { ...headers, 'content-type': 'application/json' } });
 */
export async function signWebhook(secret: string, message: WebhookMessage): Promise<WebhookHeaders> {
  const key = await hmacKey(secret);
  const signature = await sign(key, message.id, String(message.timestamp), message.body);
  return {
    'webhook-id': message.id,
    'webhook-timestamp': String(message.timestamp),
    'webhook-signature': `v1,${toBase64(signature)}`,
  };
}

/**
 * Checks a received webhook against `secret`: the three headers must be present, the timestamp
 * within `toleranceSeconds` of now (replays are refused), and one of the `v1` signatures must match
 * the HMAC of the raw body (compared in constant time). Resolves when it verifies; otherwise
 * rejects with a {@link WebhookVerificationError}. Pass the body exactly as received, before any
 * JSON parsing.
 *
 * @example
 * const body = await request.text();
 * await verifyWebhook(process.env.KILN_WEBHOOK_SECRET!, request.headers, body);
 * const job = JSON.parse(body);
 */
export async function verifyWebhook(secret: string, headers: HeaderSource, body: string | Uint8Array, options: VerifyWebhookOptions = {}): Promise<void> {
  const key = await hmacKey(secret);
  const id = requireHeader(headers, 'webhook-id');
  const timestamp = requireHeader(headers, 'webhook-timestamp');
  const signatures = requireHeader(headers, 'webhook-signature');

  if (!/^\d{1,15}$/.test(timestamp)) {
    throw new WebhookVerificationError('invalid-timestamp', `webhook-timestamp must be integer Unix seconds, got ${JSON.stringify(timestamp)}`, {
      header: 'webhook-timestamp',
    });
  }
  const tolerance = options.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  const skew = Number(timestamp) - nowSeconds;
  if (Math.abs(skew) > tolerance) {
    const how = skew < 0 ? `${-skew} s old` : `${skew} s in the future`;
    throw new WebhookVerificationError('stale-timestamp', `webhook-timestamp is ${how}; at most ${tolerance} s either way is accepted`, {
      header: 'webhook-timestamp',
    });
  }

  const expected = await sign(key, id, timestamp, body);
  let matched = false;
  for (const entry of signatures.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma === -1 || entry.slice(0, comma) !== 'v1') continue;
    const given = fromBase64OrUndefined(entry.slice(comma + 1));
    // No early exit: every entry is compared in full, whatever matched before.
    if (given !== undefined && constantTimeEqual(given, expected)) matched = true;
  }
  if (!matched) {
    throw new WebhookVerificationError('bad-signature', 'no v1 signature in webhook-signature matches the body', { header: 'webhook-signature' });
  }
}

// Named through the runtime's own WebCrypto typings, which is all the Node and browser libs share.
type HmacKey = Awaited<ReturnType<typeof globalThis.crypto.subtle.importKey>>;

async function hmacKey(secret: string): Promise<HmacKey> {
  const encoded = secret.startsWith(WEBHOOK_SECRET_PREFIX) ? secret.slice(WEBHOOK_SECRET_PREFIX.length) : secret;
  const raw = fromBase64OrUndefined(encoded);
  if (raw === undefined || raw.length === 0) {
    throw new WebhookVerificationError('invalid-secret', `the webhook secret must be ${WEBHOOK_SECRET_PREFIX} followed by base64`);
  }
  return globalThis.crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

async function sign(key: HmacKey, id: string, timestamp: string, body: string | Uint8Array): Promise<Uint8Array> {
  const encoder = new TextEncoder();
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const payload = typeof body === 'string' ? encoder.encode(body) : body;
  const signed = new Uint8Array(prefix.length + payload.length);
  signed.set(prefix, 0);
  signed.set(payload, prefix.length);
  return new Uint8Array(await globalThis.crypto.subtle.sign('HMAC', key, signed));
}

function requireHeader(headers: HeaderSource, name: keyof WebhookHeaders): string {
  let value: string | readonly string[] | null | undefined;
  if (isHeaders(headers)) value = headers.get(name);
  else {
    value = headers[name];
    // Node lower-cases incoming header names, but a hand-built object may not.
    if (value === undefined) {
      const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
      value = key === undefined ? undefined : headers[key];
    }
  }
  const text = typeof value === 'string' ? value : Array.isArray(value) ? value.join(' ') : undefined;
  if (text === undefined || text.trim() === '') {
    throw new WebhookVerificationError('missing-header', `the ${name} header is missing`, { header: name });
  }
  return text.trim();
}

function isHeaders(headers: HeaderSource): headers is Headers {
  return typeof (headers as Headers).get === 'function';
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  // Lengths are public (a SHA-256 MAC is always 32 bytes); only the contents must not leak.
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64OrUndefined(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) return undefined;
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}
