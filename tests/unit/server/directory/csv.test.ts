import { describe, expect, it } from 'vitest';
import { CsvSyntaxError, formatCsv, parseCsv } from '../../../../server/directory/csv.js';

const fieldsOf = (text: string) => parseCsv(text).map((r) => r.fields);

describe('parseCsv', () => {
  it.each([
    [
      'plain rows',
      'a,b,c\n1,2,3\n',
      [
        ['a', 'b', 'c'],
        ['1', '2', '3'],
      ],
    ],
    [
      'CRLF and no final newline',
      'a,b\r\n1,2',
      [
        ['a', 'b'],
        ['1', '2'],
      ],
    ],
    ['a lone CR as line end', 'a\r1\r', [['a'], ['1']]],
    [
      'quoted commas',
      'name,group\n"x","Class, 2026"\n',
      [
        ['name', 'group'],
        ['x', 'Class, 2026'],
      ],
    ],
    ['doubled quotes', '"say ""hi""",b\n', [['say "hi"', 'b']]],
    ['a newline inside quotes', '"line1\nline2",b\n', [['line1\nline2', 'b']]],
    ['empty fields', ',,\n', [['', '', '']]],
    ['an empty quoted field', '"",x\n', [['', 'x']]],
    ['blank lines skipped', 'a\n\n\nb\n', [['a'], ['b']]],
    ['a UTF-8 BOM', '\uFEFFname\nx\n', [['name'], ['x']]],
    ['spaces kept', ' a , b \n', [[' a ', ' b ']]],
    ['nothing', '', []],
  ])('%s', (_name, text, expected) => {
    expect(fieldsOf(text)).toEqual(expected);
  });

  it('gives each record the line it starts on', () => {
    expect(parseCsv('h\n"a\nb"\n\nc\n').map((r) => r.line)).toEqual([1, 2, 5]);
  });

  it.each([
    ['an unclosed quote', 'a\n"open,x\n', 2],
    ['text after a closing quote', 'a\n"x"y,z\n', 2],
    ['a quote inside an unquoted field', 'a\nx"y\n', 2],
  ])('refuses %s, naming the line', (_name, text, line) => {
    let caught: unknown;
    try {
      parseCsv(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CsvSyntaxError);
    expect((caught as CsvSyntaxError).line).toBe(line);
  });
});

describe('formatCsv', () => {
  it('quotes only where needed and ends every row with CRLF', () => {
    expect(formatCsv([['a', 'b,c', 'say "hi"', 'two\nlines', '']])).toBe(
      'a,"b,c","say ""hi""","two\nlines",\r\n',
    );
  });

  it.each(['=1+1', '+1', '-1', '@SUM(A1)', '\tx'])('defuses a formula-looking cell %j', (value) => {
    const out = formatCsv([[value]]);
    expect(out.startsWith("'") || out.startsWith(`"'`)).toBe(true);
  });

  it('round-trips through parseCsv', () => {
    const rows = [
      ['username', 'email', 'group', 'inviteUrl'],
      ['ana', 'ana@example.com', 'Class, 2026;Ops', 'http://127.0.0.1:8080/login?invite=abc'],
    ];
    expect(fieldsOf(formatCsv(rows))).toEqual(rows);
  });
});
