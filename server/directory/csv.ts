/**
 * RFC 4180 CSV, just enough for the class-roster import and its answer: quoted fields with `""`
 * escapes and embedded commas/newlines, CRLF or LF, an optional UTF-8 BOM.
 */

export class CsvSyntaxError extends Error {
  constructor(
    message: string,
    /** 1-based line of the file where the problem is. */
    readonly line: number,
  ) {
    super(message);
    this.name = 'CsvSyntaxError';
  }
}

export interface CsvRecord {
  readonly fields: string[];
  /** 1-based line the record starts on (a quoted field may span lines). */
  readonly line: number;
}

/** Parses CSV text into records; blank lines are skipped. Throws CsvSyntaxError. */
export function parseCsv(text: string): CsvRecord[] {
  const input = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let i = 0;
  let quotedField = false;

  const endField = () => {
    fields.push(field);
    field = '';
    quotedField = false;
  };
  const endRecord = () => {
    endField();
    if (!(fields.length === 1 && fields[0] === '')) records.push({ fields, line: recordLine });
    fields = [];
  };

  while (i < input.length) {
    const c = input[i] as string;
    if (c === '"' && field === '' && !quotedField) {
      const start = line;
      i += 1;
      for (;;) {
        if (i >= input.length) throw new CsvSyntaxError('a quoted field is not closed', start);
        const q = input[i] as string;
        if (q === '"') {
          if (input[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i += 1;
          break;
        }
        if (q === '\n') line += 1;
        field += q;
        i += 1;
      }
      quotedField = true;
      const next = input[i];
      if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r')
        throw new CsvSyntaxError(
          'text after a closing quote (write "" for a quote inside a quoted field)',
          line,
        );
      continue;
    }
    if (quotedField && c !== ',' && c !== '\n' && c !== '\r')
      throw new CsvSyntaxError(
        'text after a closing quote (write "" for a quote inside a quoted field)',
        line,
      );
    if (c === ',') {
      endField();
      i += 1;
    } else if (c === '\r' || c === '\n') {
      endRecord();
      i += c === '\r' && input[i + 1] === '\n' ? 2 : 1;
      line += 1;
      recordLine = line;
    } else if (c === '"') {
      throw new CsvSyntaxError('a quote inside an unquoted field (quote the whole field and write "")', line);
    } else {
      field += c;
      i += 1;
    }
  }
  if (field !== '' || fields.length > 0 || quotedField) endRecord();
  return records;
}

/**
 * Quotes where needed, and defuses cells a spreadsheet would run as a formula (OWASP CSV
 * injection) by prefixing a single quote.
 */
export function formatCsv(rows: readonly (readonly string[])[]): string {
  const cell = (value: string): string => {
    const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
    return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
  };
  return rows.map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}
