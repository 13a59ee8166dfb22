/**
 * What every route module's schemas share: the error body every failure answers with (the error
 * handler's `{code, message, …details}`), and a compile-time check that a TypeBox schema fits the
 * protocol type the page reads.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  { code: Type.String(), message: Type.String() },
  { additionalProperties: true },
);

/** `true` when every value the schema allows is a `T`; use as `true satisfies Fits<typeof S, T>`. */
export type Fits<S extends TSchema, T> = [Static<S>] extends [T] ? true : false;
