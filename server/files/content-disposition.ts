/**
 * `Content-Disposition: attachment` for any file name (RFC 6266 with the RFC 8187/5987 `filename*`
 * parameter): an ASCII fallback in a quoted string for old clients, and the exact name
 * percent-encoded as UTF-8. Nothing from the name can end the header, add a parameter or a line.
 */

/** RFC 8187 attr-char: everything else is percent-encoded. */
const attrChar = /[A-Za-z0-9!#$&+\-.^_`|~]/;

function encodeRfc8187(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && attrChar.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Printable ASCII minus the quoted-string specials; anything else becomes `_`. */
function asciiFallback(name: string): string {
  const fallback = [...name.normalize('NFKD')]
    .map((ch) =>
      /[\u0020-\u007e]/.test(ch) && ch !== '"' && ch !== '\\' && ch !== '%'
        ? ch
        : /\p{M}/u.test(ch)
          ? ''
          : '_',
    )
    .join('')
    .trim();
  return fallback.length > 0 ? fallback : 'download';
}

export function contentDisposition(name: string): string {
  return `attachment; filename="${asciiFallback(name)}"; filename*=UTF-8''${encodeRfc8187(name)}`;
}
