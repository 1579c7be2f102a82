// A form generated from the endpoint's input JSON Schema; its value is the job input itself.
import { useEffect, useState } from 'preact/hooks';
import { fieldKind, labelOf, resolve, matchVariant, numberBounds, numberText, parseNumber, propertiesOf, unionOf, variantValue, withKey, TEXTAREA_OVER } from './schema-fields.ts';
import type { JsonSchema } from './schema-fields.ts';
import { MediaOutput } from './media-output.tsx';

/** Whether a string field takes file contents as base64 (its description or encoding says so). */
function takesBase64(schema: JsonSchema): boolean {
  return schema['contentEncoding'] === 'base64' || (typeof schema['description'] === 'string' && /base64/i.test(schema['description']));
}

/** A file as base64 (no `data:` prefix). */
function readBase64(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
    reader.onerror = () => reject(reader.error ?? new Error('cannot read the file'));
    reader.readAsDataURL(file);
  });
}

interface FieldProps {
  schema: JsonSchema;
  root: JsonSchema;
  value: unknown;
  onChange: (value: unknown) => void;
  id: string;
  label: string;
  required: boolean;
}

function Description({ schema, id }: { schema: JsonSchema; id: string }) {
  return typeof schema['description'] === 'string' ? (
    <p class="hint" id={`${id}-hint`}>
      {schema['description']}
    </p>
  ) : null;
}

function Label({ id, label, required }: { id: string; label: string; required: boolean }) {
  return (
    <label for={id}>
      {label}
      {required && <span class="req" aria-hidden="true"> *</span>}
    </label>
  );
}

/** A JSON textarea for what the form cannot show (arrays, free objects). */
function JsonField({ value, onChange, id, label, required, schema }: FieldProps) {
  const [text, setText] = useState(() => (value === undefined ? '' : JSON.stringify(value, null, 2)));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    // Outside changes (JSON tab, variant switch) replace the text unless it already says the same.
    try {
      if (JSON.stringify(text.trim() === '' ? undefined : JSON.parse(text)) === JSON.stringify(value)) return;
    } catch {
      /* the text is being edited */
    }
    setText(value === undefined ? '' : JSON.stringify(value, null, 2));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  return (
    <div class="field">
      <Label id={id} label={`${label} (JSON)`} required={required} />
      <Description schema={schema} id={id} />
      <textarea
        id={id}
        class="mono"
        rows={4}
        value={text}
        aria-invalid={error !== null}
        onInput={(e) => {
          const t = e.currentTarget.value;
          setText(t);
          if (t.trim() === '') {
            setError(null);
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(t));
            setError(null);
          } catch (err) {
            setError(err instanceof Error ? err.message : 'invalid JSON');
          }
        }}
      />
      {error && <p class="error-text">{error}</p>}
    </div>
  );
}

/** A number input that keeps the text as typed while it means the value (see `numberText`). */
function NumberField({ schema, value, onChange, id, label, required, integer, describedBy }: FieldProps & { integer: boolean; describedBy: string | undefined }) {
  const [text, setText] = useState(() => numberText('', value, integer));
  // Outside changes (JSON tab, variant switch, prefill) replace the text unless it already says the same.
  useEffect(() => setText((current) => numberText(current, value, integer)), [value, integer]);
  const bounds = numberBounds(schema, integer);
  return (
    <div class="field">
      <Label id={id} label={label} required={required} />
      <Description schema={schema} id={id} />
      <input
        id={id}
        type="number"
        {...bounds}
        required={required}
        aria-describedby={describedBy}
        value={text}
        onInput={(e) => {
          const t = e.currentTarget.value;
          setText(t);
          onChange(parseNumber(t, integer));
        }}
      />
    </div>
  );
}

function Field(props: FieldProps) {
  const { schema, root, value, onChange, id, label, required } = props;
  const kind = fieldKind(schema, root);
  const describedBy = typeof schema['description'] === 'string' ? `${id}-hint` : undefined;
  switch (kind) {
    case 'const':
      return null;
    case 'text':
    case 'textarea': {
      const max = typeof schema['maxLength'] === 'number' ? (schema['maxLength'] as number) : undefined;
      const text = typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
      const long = kind === 'textarea' || text.length > TEXTAREA_OVER;
      const set = (t: string) => onChange(t === '' && !required ? undefined : t);
      return (
        <div class="field">
          <Label id={id} label={label} required={required} />
          <Description schema={schema} id={id} />
          {long ? (
            <textarea id={id} rows={5} class={text.length > 200 && !/\s/.test(text.slice(0, 200)) ? 'mono' : undefined} value={text} maxLength={max} required={required} aria-describedby={describedBy} onInput={(e) => set(e.currentTarget.value)} />
          ) : (
            <input id={id} type="text" value={text} maxLength={max} required={required} aria-describedby={describedBy} onInput={(e) => set(e.currentTarget.value)} />
          )}
          {takesBase64(schema) && (
            <span class="file-load">
              <label for={`${id}-file`} class="small">
                Load a file into {label} (as base64)
              </label>
              <input id={`${id}-file`} type="file" onChange={(e) => {
                const file = e.currentTarget.files?.[0];
                if (file) void readBase64(file).then(set);
              }} />
            </span>
          )}
          {text.length > 64 && <MediaOutput output={text} path={label} />}
        </div>
      );
    }
    case 'number':
    case 'integer':
      return <NumberField {...props} integer={kind === 'integer'} describedBy={describedBy} />;
    case 'boolean':
      return (
        <div class="field check">
          <input id={id} type="checkbox" checked={value === true} aria-describedby={describedBy} onChange={(e) => onChange(e.currentTarget.checked)} />
          <Label id={id} label={label} required={false} />
          <Description schema={schema} id={id} />
        </div>
      );
    case 'enum': {
      const options = schema['enum'] as unknown[];
      const index = options.findIndex((o) => JSON.stringify(o) === JSON.stringify(value));
      return (
        <div class="field">
          <Label id={id} label={label} required={required} />
          <Description schema={schema} id={id} />
          <select id={id} aria-describedby={describedBy} value={index === -1 ? '' : String(index)} onChange={(e) => onChange(e.currentTarget.value === '' ? undefined : options[Number(e.currentTarget.value)])}>
            {(index === -1 || !required) && <option value="">{required ? 'Choose…' : '(none)'}</option>}
            {options.map((o, i) => (
              <option value={String(i)}>{typeof o === 'string' ? o : JSON.stringify(o)}</option>
            ))}
          </select>
        </div>
      );
    }
    case 'multi': {
      const options = resolve(schema['items'], root)['enum'] as unknown[];
      const chosen = Array.isArray(value) ? value : [];
      const has = (o: unknown) => chosen.some((c) => JSON.stringify(c) === JSON.stringify(o));
      return (
        <fieldset class="multi">
          <legend>
            {label}
            {required && <span class="req" aria-hidden="true"> *</span>}
          </legend>
          <Description schema={schema} id={id} />
          {options.map((o, i) => (
            <span class="check-option" key={i}>
              <input
                id={`${id}-${i}`}
                type="checkbox"
                checked={has(o)}
                onChange={(e) => {
                  const on = e.currentTarget.checked;
                  // Keep the schema's order of options.
                  const next = options.filter((x) => (x === o ? on : has(x)));
                  onChange(next.length === 0 && !required ? undefined : next);
                }}
              />
              <label for={`${id}-${i}`}>{typeof o === 'string' ? o : JSON.stringify(o)}</label>
            </span>
          ))}
        </fieldset>
      );
    }
    case 'object':
      return (
        <fieldset>
          <legend>{label}</legend>
          <Description schema={schema} id={id} />
          <Fields schema={schema} root={root} value={value} onChange={onChange} idPrefix={id} />
        </fieldset>
      );
    case 'union': {
      const union = unionOf(schema, root)!;
      const index = matchVariant(union, value, root);
      const variant = union.variants[index]!;
      return (
        <fieldset>
          <legend>{label}</legend>
          <div class="field">
            <label for={id}>{union.discriminator ?? 'Variant'}</label>
            <select
              id={id}
              value={String(index)}
              onChange={(e) => {
                const nextIndex = Number(e.currentTarget.value);
                const next = union.variants[nextIndex]!;
                // Keep the values of properties both variants share.
                const kept = variantValue(union, nextIndex, root);
                if (typeof value === 'object' && value !== null) {
                  for (const p of propertiesOf(next, root)) {
                    if (p.key !== union.discriminator && p.key in (value as Record<string, unknown>)) kept[p.key] = (value as Record<string, unknown>)[p.key];
                  }
                }
                onChange(kept);
              }}
            >
              {union.labels.map((l, i) => (
                <option value={String(i)}>{l}</option>
              ))}
            </select>
          </div>
          {typeof variant['description'] === 'string' && <p class="hint variant-hint">{variant['description']}</p>}
          <Fields schema={variant} root={root} value={value} onChange={onChange} idPrefix={`${id}-${index}`} omit={union.discriminator} />
        </fieldset>
      );
    }
    default:
      return <JsonField {...props} />;
  }
}

/** The fields of an object schema (or of a union at the top). */
function Fields({
  schema,
  root,
  value,
  onChange,
  idPrefix,
  omit = null,
}: {
  schema: JsonSchema;
  root: JsonSchema;
  value: unknown;
  onChange: (v: unknown) => void;
  idPrefix: string;
  /** A property not to show (a union's discriminator, chosen by the variant select). */
  omit?: string | null;
}) {
  const kind = fieldKind(schema, root);
  if (kind === 'union') return <Field schema={schema} root={root} value={value} onChange={onChange} id={idPrefix} label="Input" required />;
  if (kind !== 'object') return <Field schema={schema} root={root} value={value} onChange={onChange} id={idPrefix} label="Input" required />;
  return (
    <>
      {propertiesOf(schema, root).filter((p) => p.key !== omit).map((p) => (
        <Field
          key={p.key}
          schema={p.schema}
          root={root}
          value={typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[p.key] : undefined}
          onChange={(v) => onChange(withKey(value, p.key, v))}
          id={`${idPrefix}-${p.key.replace(/[^\w-]/g, '_')}`}
          label={labelOf(p.key, p.schema)}
          required={p.required}
        />
      ))}
    </>
  );
}

export function SchemaForm({ schema, value, onChange }: { schema: JsonSchema; value: unknown; onChange: (v: unknown) => void }) {
  return (
    <div class="schema-form">
      <Fields schema={schema} root={schema} value={value} onChange={onChange} idPrefix="in" />
    </div>
  );
}
