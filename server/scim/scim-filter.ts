/**
 * The SCIM filters Cove understands (RFC 7644 §3.4.2.2), parsed by a tiny tokenizer: one
 * `<attribute> eq "<string>"` comparison, which is what Okta and Entra send to look a user or
 * group up. Anything else is refused as `invalidFilter`. The value is decoded as a JSON string
 * and compared in memory: it never reaches SQL.
 */
import { scimErrors } from './scim-error.js';

export interface EqualityFilter {
  /** The attribute as Cove names it (canonical case). */
  readonly attribute: string;
  readonly value: string;
}

export const maxFilterChars = 1000;

const attributeName = /^[A-Za-z][A-Za-z0-9._:-]*/;

/** `attributes` maps lower-cased names the caller allows to their canonical form. */
export function parseFilter(text: string, attributes: readonly string[]): EqualityFilter {
  if (text.length > maxFilterChars)
    throw scimErrors.invalidFilter(`The filter is longer than ${maxFilterChars} characters.`);
  const supported = `Cove supports only ${attributes.map((a) => `${a} eq "…"`).join(', ')}.`;
  const source = text.trim();
  const name = attributeName.exec(source)?.[0];
  const canonical = attributes.find((a) => a.toLowerCase() === name?.toLowerCase());
  if (name === undefined || canonical === undefined)
    throw scimErrors.invalidFilter(
      `The filter must start with an attribute Cove can search by. ${supported}`,
    );
  let rest = source.slice(name.length);
  const operator = /^\s+(\S+)\s+/.exec(rest);
  if (!operator || operator[1]?.toLowerCase() !== 'eq')
    throw scimErrors.invalidFilter(`Only the eq operator is supported. ${supported}`);
  rest = rest.slice(operator[0].length);
  if (!rest.startsWith('"'))
    throw scimErrors.invalidFilter(`The value must be a string in double quotes. ${supported}`);
  // The closing quote: the first one not escaped by a backslash.
  let end = 1;
  while (end < rest.length && rest[end] !== '"') end += rest[end] === '\\' ? 2 : 1;
  if (end >= rest.length)
    throw scimErrors.invalidFilter('The string value is not closed with a double quote.');
  let value: unknown;
  try {
    value = JSON.parse(rest.slice(0, end + 1));
  } catch {
    throw scimErrors.invalidFilter('The string value is not valid (check its escapes).');
  }
  if (rest.slice(end + 1).trim() !== '')
    throw scimErrors.invalidFilter(
      `Only one comparison is supported (no and/or/not, no brackets). ${supported}`,
    );
  return { attribute: canonical, value: value as string };
}
