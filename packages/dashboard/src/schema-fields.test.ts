import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fieldKind, initialValue, matchVariant, numberBounds, numberText, prefill, propertiesOf, resolve, unionOf } from './schema-fields.ts';
import type { JsonSchema } from './schema-fields.ts';

const schema: JsonSchema = {
  type: 'object',
  properties: {
    text: { type: 'string', maxLength: 5000 },
    voice: { type: 'string', enum: ['slt', 'kal'], default: 'slt' },
    speed: { type: 'number', minimum: 0.5, maximum: 2, default: 1 },
    count: { type: 'integer', exclusiveMinimum: 0 },
    stream: { type: 'boolean' },
    name: { type: 'string' },
    note: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    options: { type: 'object', properties: { loud: { type: 'boolean', default: true } } },
    tags: { type: 'array', items: { type: 'string' } },
    stages: { type: 'array', items: { type: 'string', enum: ['ingest', 'roto'] } },
    ref: { $ref: '#/$defs/Mode' },
  },
  required: ['text', 'stream'],
  $defs: { Mode: { type: 'string', enum: ['a', 'b'] } },
};

test('each property gets its control', () => {
  const kinds = Object.fromEntries(propertiesOf(schema, schema).map((p) => [p.key, fieldKind(p.schema, schema)]));
  assert.deepEqual(kinds, {
    text: 'textarea',
    voice: 'enum',
    speed: 'number',
    count: 'integer',
    stream: 'boolean',
    name: 'text',
    note: 'text',
    options: 'object',
    tags: 'json',
    stages: 'multi',
    ref: 'enum',
  });
  assert.deepEqual(numberBounds(propertiesOf(schema, schema)[3]!.schema, true), { min: 1, step: '1' });
  assert.equal(resolve({ $ref: '#/$defs/Mode' }, schema)['enum'] instanceof Array, true);
});

test('defaults, then test input, prefill the form', () => {
  assert.deepEqual(initialValue(schema, schema), { voice: 'slt', speed: 1, stream: false });
  assert.deepEqual(prefill(schema, { text: 'hello', speed: 1.5 }), { voice: 'slt', speed: 1.5, stream: false, text: 'hello' });
  assert.deepEqual(prefill(null, { message: 'hi' }), { message: 'hi' });
  assert.deepEqual(prefill(null, undefined), {});
});

test('a discriminated union picks its variant by the const property', () => {
  const union: JsonSchema = {
    oneOf: [
      { type: 'object', properties: { action: { const: 'list' } }, required: ['action'] },
      { type: 'object', properties: { action: { type: 'string', enum: ['render'] }, project: { type: 'string' } }, required: ['action', 'project'] },
    ],
  };
  assert.equal(fieldKind(union, union), 'union');
  const u = unionOf(union, union)!;
  assert.equal(u.discriminator, 'action');
  assert.deepEqual(u.labels, ['list', 'render']);
  assert.equal(matchVariant(u, { action: 'render', project: 'p' }, union), 1);
  assert.equal(matchVariant(u, 'nonsense', union), 0);
  assert.deepEqual(initialValue(union, union), { action: 'list' });
  const withDefaults: JsonSchema = { oneOf: [union['oneOf'] as JsonSchema[]][0]!.map((v, i) => (i === 1 ? { ...v, properties: { ...(v['properties'] as object), frames: { type: 'integer', default: 300 } } } : v)) };
  assert.deepEqual(prefill(withDefaults, { action: 'render', project: 'p' }), { action: 'render', frames: 300, project: 'p' });
});

test('numberText keeps what is typed while it means the value, so 1.05 and 0.001 can be typed digit by digit', () => {
  // Typing 1.05: `1.0` means 1 and stays `1.0` (not rewritten as `1`, which would give `15`).
  assert.equal(numberText('1.0', 1, false), '1.0');
  assert.equal(numberText('0.00', 0, false), '0.00');
  // The browser reads `1.` and `-` as empty: no value, and the text stays.
  assert.equal(numberText('', undefined, false), '');
  // A value set from elsewhere (the JSON tab, a variant switch) replaces the text.
  assert.equal(numberText('1.0', 2.5, false), '2.5');
  assert.equal(numberText('7', undefined, false), '');
  assert.equal(numberText('', 3, true), '3');
});

test('a type that requires itself through $ref gets a finite first value instead of overflowing the stack', () => {
  // A linked list as zod exports one: the input's `head` is a node whose required `next` is a node.
  const schema: JsonSchema = {
    type: 'object',
    properties: { head: { $ref: '#/$defs/node' } },
    required: ['head'],
    $defs: { node: { type: 'object', properties: { label: { type: 'string', default: 'n' }, next: { $ref: '#/$defs/node' } }, required: ['label', 'next'] } },
  };
  const value = (initialValue(schema, schema) as Record<string, unknown>)['head'] as Record<string, unknown>;
  let depth = 0;
  for (let node: unknown = value; node && typeof node === 'object'; node = (node as Record<string, unknown>)['next']) depth++;
  assert.ok(depth > 1 && depth < 40, `nested ${depth} deep`);
  assert.equal(value['label'], 'n');
});
