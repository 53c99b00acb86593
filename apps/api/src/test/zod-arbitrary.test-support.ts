import fc from 'fast-check';
import type { z } from 'zod';

/**
 * fast-check arbitraries derived from a zod (v4) schema: `validInput` aims inside the
 * schema (lengths, ranges, formats, enums), `mutatedInput` starts there and breaks one
 * thing. Refinements the walk cannot see only make a "valid" value invalid, which the
 * fuzzed surface must handle anyway.
 */

interface Check {
  check: string;
  minimum?: number;
  maximum?: number;
  value?: number;
  inclusive?: boolean;
  format?: string;
  pattern?: RegExp;
}
interface Def {
  type: string;
  checks?: { _zod: { def: Check } }[];
  format?: string;
  pattern?: RegExp;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  entries?: Record<string, string | number>;
  values?: unknown[];
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  items?: z.ZodType[];
  left?: z.ZodType;
  right?: z.ZodType;
  getter?: () => z.ZodType;
}

const defOf = (schema: z.ZodType) => (schema as unknown as { _zod: { def: Def } })._zod.def;
const checksOf = (def: Def) => (def.checks ?? []).map((c) => c._zod.def);

/** Keys whose only effect is to make the server wait (a long poll): pinned to 0 so a run stays short. */
const WAIT_KEYS = new Set(['waitMs']);

function stringArbitrary(def: Def): fc.Arbitrary<string> {
  const checks = checksOf(def);
  const format = def.format ?? checks.find((c) => c.check === 'string_format')?.format;
  const pattern = def.pattern ?? checks.find((c) => c.check === 'string_format')?.pattern;
  if (format === 'email') return fc.emailAddress().filter((e) => e.length <= 254);
  if (format === 'uuid' || format === 'guid') return fc.uuid();
  if (format === 'url') return fc.webUrl();
  if (format === 'datetime')
    return fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString());
  let minLength = 0;
  let maxLength = 64;
  for (const c of checks) {
    if (c.check === 'min_length' && c.minimum !== undefined) minLength = c.minimum;
    if (c.check === 'max_length' && c.maximum !== undefined) maxLength = Math.min(c.maximum, Math.max(64, minLength));
    if (c.check === 'length_equals' && c.value !== undefined) minLength = maxLength = c.value;
  }
  if (pattern)
    return fc
      .stringMatching(pattern)
      .filter((s) => s.length >= minLength && s.length <= Math.max(maxLength, minLength));
  return fc.string({
    minLength,
    maxLength: Math.max(minLength, maxLength),
    unit: fc.constantFrom('a', 'Z', '0', ' ', '-', '_', 'é', '😀', '\u0000', '%', "'", '"'),
  });
}

function numberArbitrary(def: Def): fc.Arbitrary<number> {
  let min = -1e9;
  let max = 1e9;
  let integer = false;
  let step: number | undefined;
  for (const c of checksOf(def)) {
    if (c.check === 'number_format') integer = true;
    if (c.check === 'greater_than' && c.value !== undefined)
      min = c.inclusive ? c.value : c.value + (integer ? 1 : 1e-6);
    if (c.check === 'less_than' && c.value !== undefined) max = c.inclusive ? c.value : c.value - (integer ? 1 : 1e-6);
    if (c.check === 'multiple_of' && c.value !== undefined) step = c.value;
  }
  if (step) return fc.integer({ min: Math.ceil(min / step), max: Math.floor(max / step) }).map((k) => k * step!);
  if (integer) return fc.integer({ min: Math.ceil(min), max: Math.floor(max) });
  return fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
}

/** Values the schema should accept (as far as its structure tells). */
export function validInput(schema: z.ZodType, depth = 0): fc.Arbitrary<unknown> {
  const def = defOf(schema);
  const inner = (s: z.ZodType) => validInput(s, depth + 1);
  switch (def.type) {
    case 'string':
      return stringArbitrary(def);
    case 'number':
      return numberArbitrary(def);
    case 'int':
      return fc.integer();
    case 'bigint':
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'boolean':
      return fc.boolean();
    case 'date':
      return fc.date({ noInvalidDate: true });
    case 'null':
      return fc.constant(null);
    case 'undefined':
    case 'void':
      return fc.constant(undefined);
    case 'literal':
      return fc.constantFrom(...(def.values ?? [null]));
    case 'enum':
      return fc.constantFrom(...Object.values(def.entries ?? { x: 'x' }));
    case 'optional':
      return fc.option(inner(def.innerType!), { nil: undefined });
    case 'nullable':
      return fc.option(inner(def.innerType!), { nil: null });
    case 'default':
    case 'prefault':
    case 'catch':
      return fc.option(inner(def.innerType!), { nil: undefined });
    case 'nonoptional':
    case 'readonly':
      return inner(def.innerType!);
    case 'pipe':
      return inner(def.in!);
    case 'lazy':
      return depth > 4 ? fc.constant(null) : inner(def.getter!());
    case 'array': {
      let minLength = 0;
      let maxLength = 5;
      for (const c of checksOf(def)) {
        if (c.check === 'min_length' && c.minimum !== undefined) minLength = c.minimum;
        if (c.check === 'max_length' && c.maximum !== undefined) maxLength = Math.min(c.maximum, minLength + 5);
      }
      return fc.array(inner(def.element!), { minLength, maxLength: Math.max(minLength, maxLength) });
    }
    case 'tuple':
      return fc.tuple(...(def.items ?? []).map(inner));
    case 'union':
      return fc.oneof(...(def.options ?? []).map(inner));
    case 'intersection':
      return fc
        .tuple(inner(def.left!), inner(def.right!))
        .map(([a, b]) => (typeof a === 'object' && typeof b === 'object' ? { ...(a as object), ...(b as object) } : a));
    case 'record':
      return fc.dictionary(validInput(def.keyType!, depth + 1).map(String), inner(def.valueType!), { maxKeys: 4 });
    case 'object': {
      const entries = Object.entries(def.shape ?? {}).map(
        ([key, value]) => [key, WAIT_KEYS.has(key) ? fc.constant(0) : inner(value)] as const,
      );
      return fc
        .record(Object.fromEntries(entries))
        .map((value) => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)));
    }
    default:
      return fc.jsonValue();
  }
}

/** Anything JSON can carry, plus the shapes that trip naive code. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    null,
    '',
    ' ',
    -1,
    0,
    2 ** 31,
    2 ** 53,
    -(2 ** 63),
    1e308,
    0.1,
    'NaN',
    'Infinity',
    '-0',
    '0x10',
    [],
    {},
    [[[]]],
    '00000000-0000-0000-0000-000000000000',
    'not-a-uuid',
    '../../etc/passwd',
    '<script>alert(1)</script>',
    '\u0000',
    '%00',
    "' or 1=1 --",
    JSON.parse('{"__proto__":{"admin":true}}'),
    { constructor: { prototype: { admin: true } } },
    'x'.repeat(100_000),
  ),
);

function mutate(value: unknown, path: string[], replacement: unknown, action: 'replace' | 'drop' | 'extra'): unknown {
  if (path.length === 0 || value === null || typeof value !== 'object')
    return action === 'replace' ? replacement : value;
  const copy: Record<string, unknown> = Array.isArray(value)
    ? ([...value] as unknown as Record<string, unknown>)
    : { ...value };
  const [head, ...rest] = path;
  if (rest.length === 0 && action === 'drop') delete copy[head!];
  else if (rest.length === 0 && action === 'extra') copy[`${head}_extra`] = replacement;
  else copy[head!] = mutate(copy[head!], rest, replacement, action);
  return copy;
}

function pathsOf(value: unknown, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== 'object') return [prefix];
  return [
    prefix,
    ...Object.keys(value).flatMap((key) => pathsOf((value as Record<string, unknown>)[key], [...prefix, key])),
  ];
}

/** A valid input with one thing broken: a field replaced by something hostile, dropped, or joined by an unknown one. */
export function mutatedInput(schema: z.ZodType): fc.Arbitrary<unknown> {
  return fc
    .tuple(
      validInput(schema),
      hostile,
      fc.nat(),
      fc.constantFrom('replace', 'drop', 'extra') as fc.Arbitrary<'replace' | 'drop' | 'extra'>,
    )
    .map(([valid, replacement, pick, action]) => {
      const paths = pathsOf(valid);
      return mutate(valid, paths[pick % paths.length]!, replacement, action);
    });
}
