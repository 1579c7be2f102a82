// How a JSON Schema (the worker's input schema, e.g. from zod's toJSONSchema) becomes form
// controls: which control each property gets, first values, and discriminated unions. Pure: no DOM.

export type JsonSchema = Record<string, unknown>;

export type FieldKind = 'text' | 'textarea' | 'number' | 'integer' | 'boolean' | 'enum' | 'multi' | 'const' | 'object' | 'union' | 'json';

/** Strings longer than this (or with `maxLength` above it) get a textarea. */
export const TEXTAREA_OVER = 200;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `$ref` (local: `#/$defs/X`, `#/definitions/X`) followed, single-member `allOf` unwrapped, nullable unions reduced to their one non-null member. */
export function resolve(schema: unknown, root: JsonSchema, depth = 0): JsonSchema {
  if (!isRecord(schema)) return {};
  if (depth > 20) return schema;
  const ref = schema['$ref'];
  if (typeof ref === 'string' && ref.startsWith('#/')) {
    let target: unknown = root;
    for (const part of ref.slice(2).split('/')) target = isRecord(target) ? target[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    const { $ref: _ref, ...rest } = schema;
    return resolve({ ...(isRecord(target) ? target : {}), ...rest }, root, depth + 1);
  }
  const allOf = schema['allOf'];
  if (Array.isArray(allOf) && allOf.length === 1) {
    const { allOf: _a, ...rest } = schema;
    return resolve({ ...resolve(allOf[0], root, depth + 1), ...rest }, root, depth + 1);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const members = schema[key];
    if (!Array.isArray(members)) continue;
    const nonNull = members.filter((m) => !(isRecord(m) && m['type'] === 'null'));
    if (nonNull.length === 1 && members.length === 2) {
      const { [key]: _m, ...rest } = schema;
      return { ...resolve(nonNull[0], root, depth + 1), ...rest, nullable: true };
    }
  }
  return schema;
}

function typeOf(schema: JsonSchema): string | undefined {
  const type = schema['type'];
  if (typeof type === 'string') return type;
  if (Array.isArray(type)) return type.find((t): t is string => typeof t === 'string' && t !== 'null');
  return undefined;
}

/** The control for a (resolved) schema. */
export function fieldKind(schema: JsonSchema, root: JsonSchema): FieldKind {
  if ('const' in schema) return 'const';
  if (Array.isArray(schema['enum']) && schema['enum'].length > 0) return 'enum';
  if (unionOf(schema, root)) return 'union';
  switch (typeOf(schema)) {
    case 'string': {
      const max = schema['maxLength'];
      const format = schema['format'];
      if ((typeof max === 'number' && max > TEXTAREA_OVER) || format === 'textarea') return 'textarea';
      return 'text';
    }
    case 'number':
      return 'number';
    case 'integer':
      return 'integer';
    case 'boolean':
      return 'boolean';
    case 'object':
      return isRecord(schema['properties']) ? 'object' : 'json';
    case 'array': {
      const items = resolve(schema['items'], root);
      return Array.isArray(items['enum']) && items['enum'].length > 0 ? 'multi' : 'json';
    }
    default:
      return isRecord(schema['properties']) ? 'object' : 'json';
  }
}

export interface Property {
  key: string;
  schema: JsonSchema;
  required: boolean;
}

export function propertiesOf(schema: JsonSchema, root: JsonSchema): Property[] {
  const props = schema['properties'];
  if (!isRecord(props)) return [];
  const required = Array.isArray(schema['required']) ? (schema['required'] as unknown[]) : [];
  return Object.entries(props).map(([key, s]) => ({ key, schema: resolve(s, root), required: required.includes(key) }));
}

export interface Union {
  variants: JsonSchema[];
  /** The property whose `const` tells the variants apart (e.g. `action`), null when none does. */
  discriminator: string | null;
  /** Each variant's discriminator value (undefined without a discriminator). */
  values: unknown[];
  labels: string[];
}

/** A oneOf/anyOf of object variants (a discriminated union), or null. */
export function unionOf(schema: JsonSchema, root: JsonSchema): Union | null {
  const members = Array.isArray(schema['oneOf']) ? schema['oneOf'] : Array.isArray(schema['anyOf']) ? schema['anyOf'] : null;
  if (!members || members.length < 2) return null;
  const variants = members.map((m) => resolve(m, root));
  if (!variants.every((v) => isRecord(v['properties']))) return null;
  const constOf = (v: JsonSchema, key: string): unknown => {
    const p = resolve((v['properties'] as Record<string, unknown>)[key], root);
    if ('const' in p) return p['const'];
    if (Array.isArray(p['enum']) && p['enum'].length === 1) return p['enum'][0];
    return undefined;
  };
  const firstKeys = Object.keys(variants[0]!['properties'] as Record<string, unknown>);
  const discriminator =
    firstKeys.find((key) => {
      const values = variants.map((v) => constOf(v, key));
      return values.every((x) => x !== undefined) && new Set(values.map((x) => JSON.stringify(x))).size === values.length;
    }) ?? null;
  const values = variants.map((v) => (discriminator === null ? undefined : constOf(v, discriminator)));
  const labels = variants.map((v, i) => {
    if (discriminator !== null) return String(constOf(v, discriminator));
    if (typeof v['title'] === 'string') return v['title'];
    return `Option ${i + 1}`;
  });
  return { variants, discriminator, values, labels };
}

/** Which variant a value is (by its discriminator, else by the variant whose required keys it has), 0 when unsure. */
export function matchVariant(union: Union, value: unknown, root: JsonSchema): number {
  if (!isRecord(value)) return 0;
  if (union.discriminator !== null) {
    const i = union.labels.findIndex((label) => label === String(value[union.discriminator!]));
    return i === -1 ? 0 : i;
  }
  const i = union.variants.findIndex((v) => propertiesOf(v, root).every((p) => !p.required || p.key in value));
  return i === -1 ? 0 : i;
}

/** How deep {@link initialValue} follows nested objects and unions. */
const MAX_INITIAL_DEPTH = 16;

/** The first value of a field: its default, its const, or for objects and unions the values of their parts. */
export function initialValue(schema: JsonSchema, root: JsonSchema, depth = 0): unknown {
  if ('default' in schema) return structuredClone(schema['default']);
  if ('const' in schema) return schema['const'];
  // A type that requires itself (through $ref) has no finite first value: stop and leave it empty.
  if (depth > MAX_INITIAL_DEPTH) return undefined;
  const kind = fieldKind(schema, root);
  if (kind === 'union') return variantValue(unionOf(schema, root)!, 0, root, depth + 1);
  if (kind === 'object') {
    const out: Record<string, unknown> = {};
    for (const p of propertiesOf(schema, root)) {
      const k = fieldKind(p.schema, root);
      const v = p.required || 'default' in p.schema || k === 'const' ? initialValue(p.schema, root, depth + 1) : undefined;
      if (v !== undefined) out[p.key] = v;
      else if (p.required && k === 'boolean') out[p.key] = false;
    }
    return out;
  }
  return undefined;
}

/** The first value of variant `index` of a union, its discriminator set. */
export function variantValue(union: Union, index: number, root: JsonSchema, depth = 0): Record<string, unknown> {
  const fresh = initialValue(union.variants[index]!, root, depth);
  const out: Record<string, unknown> = isRecord(fresh) ? fresh : {};
  if (union.discriminator !== null && union.values[index] !== undefined) out[union.discriminator] = union.values[index];
  return out;
}

/** The form's first values: the schema's defaults with the endpoint's test input laid over them. */
export function prefill(schema: JsonSchema | null, testInput: unknown): unknown {
  let base = schema ? initialValue(schema, schema) : undefined;
  // A union: the defaults of the variant the test input is.
  const union = schema && fieldKind(schema, schema) === 'union' ? unionOf(schema, schema) : null;
  if (schema && union && testInput !== undefined && testInput !== null) base = variantValue(union, matchVariant(union, testInput, schema), schema);
  if (testInput === undefined || testInput === null) return base ?? {};
  return deepMerge(base, testInput);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isRecord(base) || !isRecord(over)) return structuredClone(over);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

/** A label for a property: its title, else its key. */
export function labelOf(key: string, schema: JsonSchema): string {
  return typeof schema['title'] === 'string' && schema['title'] !== '' ? schema['title'] : key;
}

/** `value` with `key` set (undefined removes it). */
export function withKey(value: unknown, key: string, next: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = isRecord(value) ? { ...value } : {};
  if (next === undefined) delete out[key];
  else out[key] = next;
  return out;
}

/** A number input's text → the value (undefined when empty, NaN kept out). */
export function parseNumber(text: string, integer: boolean): number | undefined {
  if (text.trim() === '') return undefined;
  const n = Number(text);
  if (!Number.isFinite(n)) return undefined;
  return integer ? Math.trunc(n) : n;
}

/**
 * What a number input should show for `value`, given what it shows now: the text as typed while it
 * still means that value (`1.0` on the way to `1.05`, `-` or `1.` that the browser reads as empty),
 * else the value itself. Rewriting `1.0` as `1` on every keystroke would make `1.05` impossible to type.
 */
export function numberText(current: string, value: unknown, integer: boolean): string {
  const wanted = typeof value === 'number' ? value : undefined;
  if (parseNumber(current, integer) === wanted) return current;
  return wanted === undefined ? '' : String(wanted);
}

/** min/max/step of a number schema, with exclusive bounds folded in for integers. */
export function numberBounds(schema: JsonSchema, integer: boolean): { min?: number; max?: number; step: string } {
  const num = (k: string) => (typeof schema[k] === 'number' ? (schema[k] as number) : undefined);
  let min = num('minimum');
  let max = num('maximum');
  const exMin = num('exclusiveMinimum');
  const exMax = num('exclusiveMaximum');
  if (exMin !== undefined) min = integer ? exMin + 1 : exMin;
  if (exMax !== undefined) max = integer ? exMax - 1 : exMax;
  const multiple = num('multipleOf');
  return { ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}), step: multiple !== undefined ? String(multiple) : integer ? '1' : 'any' };
}
