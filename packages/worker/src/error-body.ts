import { formatErrorString, type ErrorObject } from '@kiln/protocol';

/** The runtime's version string, sent where runpod-python sends `runpod_version`. */
export const RUNTIME_VERSION = 'kiln-0.1.0';

/** Who is reporting an error: fields of RunPod's error object that do not depend on the error. */
export interface ErrorOrigin {
  readonly hostname: string;
  readonly workerId: string;
}

/**
 * Builds RunPod's error string (PROTOCOL.md §1.8): JSON text with error_type, error_message,
 * error_traceback, hostname, worker_id and runpod_version, plus any `extra` fields.
 */
export function errorString(origin: ErrorOrigin, type: string, message: string, traceback = '', extra: Record<string, unknown> = {}): string {
  const info: ErrorObject = {
    error_type: type,
    error_message: message,
    error_traceback: traceback,
    hostname: origin.hostname,
    worker_id: origin.workerId,
    runpod_version: RUNTIME_VERSION,
    ...extra,
  };
  return formatErrorString(info);
}

/** RunPod's error string for something a handler threw. */
export function thrownErrorString(origin: ErrorOrigin, thrown: unknown): string {
  if (thrown instanceof Error) {
    return errorString(origin, thrown.name || 'Error', thrown.message, thrown.stack ?? '');
  }
  return errorString(origin, typeof thrown, describe(thrown), '');
}

/** A readable one-line description of any thrown or returned value. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
