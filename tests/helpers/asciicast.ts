/**
 * The asciicast v2 definition (docs.asciinema.org/manual/asciicast/v2) as JSON schemas, and a
 * validator for whole files: newline-delimited JSON, a header object on the first line, then one
 * `[time, code, data]` event per line with times that never go back. Tests hold every file Cove
 * writes to it, so existing players and tools read them.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

export const AsciicastHeader = Type.Object(
  {
    version: Type.Literal(2),
    width: Type.Integer({ minimum: 1 }),
    height: Type.Integer({ minimum: 1 }),
    timestamp: Type.Optional(Type.Integer()),
    duration: Type.Optional(Type.Number()),
    idle_time_limit: Type.Optional(Type.Number()),
    command: Type.Optional(Type.String()),
    title: Type.Optional(Type.String()),
    env: Type.Optional(Type.Record(Type.String(), Type.String())),
    theme: Type.Optional(Type.Object({ fg: Type.String(), bg: Type.String(), palette: Type.String() })),
  },
  { additionalProperties: true },
);

export const AsciicastEvent = Type.Union([
  Type.Tuple([
    Type.Number({ minimum: 0 }),
    Type.Union([Type.Literal('o'), Type.Literal('i'), Type.Literal('m')]),
    Type.String(),
  ]),
  Type.Tuple([Type.Number({ minimum: 0 }), Type.Literal('r'), Type.String({ pattern: '^\\d+x\\d+$' })]),
]);

export type AsciicastEventValue = Static<typeof AsciicastEvent>;

export interface ParsedAsciicast {
  readonly header: Static<typeof AsciicastHeader>;
  readonly events: AsciicastEventValue[];
}

/** Parses and validates a whole file; throws with the line number of the first problem. */
export function parseAsciicast(text: string): ParsedAsciicast {
  if (!text.endsWith('\n')) throw new Error('asciicast: the file does not end with a newline');
  const lines = text.slice(0, -1).split('\n');
  const header = JSON.parse(lines[0] ?? '') as unknown;
  if (!Value.Check(AsciicastHeader, header))
    throw new Error(`asciicast line 1: not a v2 header: ${lines[0] ?? ''}`);
  const events: AsciicastEventValue[] = [];
  let last = 0;
  for (const [index, line] of lines.slice(1).entries()) {
    const event = JSON.parse(line) as unknown;
    if (!Value.Check(AsciicastEvent, event))
      throw new Error(`asciicast line ${index + 2}: not an event: ${line}`);
    if (event[0] < last) throw new Error(`asciicast line ${index + 2}: time goes back`);
    last = event[0];
    events.push(event);
  }
  return { header, events };
}

/** Everything the recorded shell printed, in order. */
export const castOutput = (cast: ParsedAsciicast): string =>
  cast.events
    .filter((e) => e[1] === 'o')
    .map((e) => e[2])
    .join('');
