import { toStandardJsonSchema, type StandardJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';

/**
 * `schema` with the Standard JSON Schema interface, so the worker can describe its input
 * (`KILN_DESCRIBE=1`) for the dashboard's Run form. Its `v.check`s (rules across fields, rules
 * written as code) have no JSON Schema form: the description leaves them out; jobs still run them.
 */
export function describable<S extends v.GenericSchema>(schema: S): StandardJsonSchema<v.InferInput<S>, v.InferOutput<S>> {
  const standard = toStandardJsonSchema(schema)['~standard'];
  type Options = Parameters<typeof standard.jsonSchema.input>[0];
  const withoutChecks = (options: Options): Options => ({ ...options, libraryOptions: { ignoreActions: ['check'], ...options.libraryOptions } });
  return {
    '~standard': {
      ...standard,
      jsonSchema: { input: (options) => standard.jsonSchema.input(withoutChecks(options)), output: (options) => standard.jsonSchema.output(withoutChecks(options)) },
    },
  };
}
