/**
 * The Standard Schema v1 interface (standardschema.dev), declared here so the worker needs no
 * dependency: zod 4, valibot and arktype schemas all satisfy it.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/** The result of a Standard Schema validation. */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardIssue> };

/** One validation issue. */
export interface StandardIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** The output type of a Standard Schema. */
export type InferOutput<S> = S extends StandardSchemaV1<unknown, infer O> ? O : unknown;

/** One failing path and its message, as kiln reports them. */
export interface InputIssue {
  path: string;
  message: string;
}

/** Renders an issue path as `input.items[2].name`. */
export function formatIssuePath(path: StandardIssue['path']): string {
  let out = 'input';
  for (const segment of path ?? []) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    out += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
  }
  return out;
}

/** Validates `value` with `schema`: the parsed value, or every issue with its path. */
export async function validateInput<S extends StandardSchemaV1>(
  schema: S,
  value: unknown,
): Promise<{ ok: true; value: InferOutput<S> } | { ok: false; issues: InputIssue[] }> {
  const result = await schema['~standard'].validate(value);
  if (result.issues) {
    return { ok: false, issues: result.issues.map((i) => ({ path: formatIssuePath(i.path), message: i.message })) };
  }
  return { ok: true, value: result.value as InferOutput<S> };
}
