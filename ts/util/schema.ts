/**
 * The small zod builders every schema of the package is written with. Each check's error message is
 * the expected form ("an integer >= 1"); config/errors.ts's describeIssues adds the key path and the
 * value got. They live beside the floors because the schemas are spread over them: the GAN step spec on
 * gan/, the layer specs on nn/, the run config on config/, the run folder's files on store/.
 */
import { z } from 'zod';

/** A schema check whose error message is `form` (what was expected); the formatters add key path and value. */
export const expected = (form: string) => ({ error: () => form });

export const intAtLeast = (min: number) => {
  const form = `an integer >= ${min}`;
  return z.int(expected(form)).min(min, expected(form));
};
export const int = (form = 'an integer') => z.int(expected(form));
export const num = (form = 'a number') => z.number(expected(form));
export const bool = z.boolean(expected('true or false'));
export const str = z.string(expected('a string'));

/** One of `values`, the message listing them: '"sum" or "mean"'. */
export const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => {
  const quoted = values.map((v) => JSON.stringify(v));
  return z.enum(values, expected(quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`));
};

/**
 * An object of `shape`, `form` naming it when the value is no object. Loose: keys the schema does not
 * know pass through untouched (a config.json written by a later version keeps them when rewritten).
 */
export const obj = <S extends z.core.$ZodLooseShape>(shape: S, form: string) => z.looseObject(shape, expected(form));

/**
 * The type a loose schema declares: its declared fields without the index signature of the keys it
 * lets through (so a misspelt key in a literal is still a type error).
 */
export type KnownFields<T> = T extends readonly unknown[]
  ? { [I in keyof T]: KnownFields<T[I]> }
  : T extends object
    ? { [K in keyof T as string extends K ? never : K]: KnownFields<T[K]> }
    : T;

/** What a value must look like to pass `schema` (its declared fields, as written: defaults may be left out). */
export type SpecOf<S extends z.ZodType> = KnownFields<z.input<S>>;
