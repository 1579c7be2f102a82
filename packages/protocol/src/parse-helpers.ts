import { ProtocolParseError } from './parse-error.ts';

/** A JSON object: not null, not an array, not a class instance. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Whether `obj` has its own `key` with a value other than `undefined` (JSON cannot carry `undefined`). */
export function hasKey(obj: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(obj, key) && obj[key] !== undefined;
}

/** Path of `key` inside the value found at `parent` (`''` is the root). */
export function fieldPath(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

/** Name used for the value at `path` itself; the root is called `body`. */
export function selfField(path: string): string {
  return path === '' ? 'body' : path;
}

/** Returns `value` as an object or throws. */
export function requireObject(value: unknown, field: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw new ProtocolParseError(field, 'must be an object');
  return value;
}

/** Throws unless `obj[key]` is present; returns it. */
export function requirePresent(obj: Record<string, unknown>, key: string, parent: string): unknown {
  if (!hasKey(obj, key)) throw new ProtocolParseError(fieldPath(parent, key), 'is required');
  return obj[key];
}

/** Returns `value` as a string or throws. */
export function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ProtocolParseError(field, 'must be a string');
  return value;
}

/** Returns `value` as a non-empty string or throws. */
export function requireNonEmptyString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new ProtocolParseError(field, 'must be a non-empty string');
  return value;
}

/** Returns `value` as a boolean or throws. */
export function requireBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw new ProtocolParseError(field, 'must be a boolean');
  return value;
}

/** Returns `value` as an integer in `[min, max]` or throws; `unit` is appended to the rule, e.g. `(ms)`. */
export function requireIntegerInRange(value: unknown, field: string, min: number, max: number, unit?: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const suffix = unit === undefined ? '' : ` (${unit})`;
    throw new ProtocolParseError(field, `must be an integer from ${min} to ${max}${suffix}`);
  }
  return value;
}

/** Returns `value` as a finite number ≥ 0 or throws. */
export function requireNonNegativeNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ProtocolParseError(field, 'must be a non-negative number');
  }
  return value;
}

/** Returns `value` as an integer ≥ 0 or throws. */
export function requireCount(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolParseError(field, 'must be a non-negative integer');
  }
  return value;
}

/** Returns `value` as an array of strings or throws, naming the first bad item. */
export function requireStringArray(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) throw new ProtocolParseError(field, 'must be an array of strings');
  value.forEach((item: unknown, index) => requireString(item, fieldPath(field, index)));
  return value as string[];
}
