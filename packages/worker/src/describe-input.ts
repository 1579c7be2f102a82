import type { KilnWorker } from './define-worker.ts';

/** The variable that asks a worker to describe itself (one stdout line) instead of taking jobs. */
export const DESCRIBE_ENV = 'KILN_DESCRIBE';

/** JSON Schema drafts asked for, in order: the first one the schema's library can produce wins. */
export const DESCRIBE_TARGETS = ['draft-2020-12', 'draft-07'] as const;

/** What a worker says about its input: a JSON Schema of `job.input`, or null and why. */
export interface InputDescription {
  /** JSON Schema of the input the handler accepts (before the schema's defaults and transforms). */
  input: Record<string, unknown> | null;
  /** Why `input` is null; absent when it is set. */
  note?: string;
}

/**
 * The Standard JSON Schema interface (standardschema.dev/json-schema), declared here so the worker
 * needs no dependency: zod 4 schemas have it; valibot's through `toStandardJsonSchema()` of
 * `@valibot/to-json-schema`.
 */
interface StandardJsonSchemaProps {
  readonly jsonSchema?: {
    readonly input?: (options: { readonly target: string; readonly libraryOptions?: Record<string, unknown> }) => Record<string, unknown>;
  };
}

/**
 * Describes a worker's input as a JSON Schema, through the Standard JSON Schema interface of its
 * `input` schema (`input['~standard'].jsonSchema.input(...)`), asking for draft 2020-12 and then
 * draft-07. Never throws: a worker without an input schema, a schema whose library has no JSON
 * Schema converter, or one that cannot convert (a custom check, a transform) gives `input: null`
 * and a `note` that says why.
 *
 * @example
 * import { toStandardJsonSchema } from '@valibot/to-json-schema';
 * const worker = defineWorker({ input: toStandardJsonSchema(v.object({ text: v.string() })), handler });
 * describeInput(worker); // { input: { type: 'object', properties: { text: { type: 'string' } }, … } }
 */
export function describeInput(worker: KilnWorker): InputDescription {
  const schema = worker.definition.input as { readonly '~standard'?: StandardJsonSchemaProps & { readonly vendor?: string } } | undefined;
  if (schema === undefined) return { input: null, note: 'the worker has no input schema' };
  const standard = schema['~standard'];
  const convert = standard?.jsonSchema?.input;
  if (typeof convert !== 'function') {
    const vendor = standard?.vendor ?? 'unknown';
    const hint = vendor === 'valibot' ? ': wrap it with toStandardJsonSchema() from @valibot/to-json-schema' : '';
    return { input: null, note: `the input schema (${vendor}) does not implement Standard JSON Schema (~standard.jsonSchema)${hint}` };
  }
  const failures: string[] = [];
  for (const target of DESCRIBE_TARGETS) {
    try {
      const json = convert.call(standard!.jsonSchema, { target });
      if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        failures.push(`${target}: the converter returned ${Array.isArray(json) ? 'an array' : typeof json}, not a JSON Schema object`);
        continue;
      }
      return { input: json };
    } catch (error) {
      failures.push(`${target}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { input: null, note: `the input schema could not be converted to JSON Schema (${failures.join('; ')})` };
}

/**
 * The one stdout line of describe mode (`KILN_DESCRIBE=1`): `{"kilnDescribe":1,"input":…}`, with a
 * `"note"` when `input` is null. A schema that cannot be serialized (a `BigInt` default, a cycle)
 * is reported as null with a note, so the line is always valid JSON.
 */
export function describeLine(worker: KilnWorker): string {
  const { input, note } = describeInput(worker);
  try {
    return JSON.stringify({ kilnDescribe: 1, input, ...(note === undefined ? {} : { note }) });
  } catch (error) {
    return JSON.stringify({ kilnDescribe: 1, input: null, note: `the input's JSON Schema is not serializable: ${error instanceof Error ? error.message : String(error)}` });
  }
}
