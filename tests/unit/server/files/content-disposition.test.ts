import { describe, expect, it } from 'vitest';
import { contentDisposition } from '../../../../server/files/content-disposition.js';

describe('contentDisposition', () => {
  it.each([
    ['data.csv', `attachment; filename="data.csv"; filename*=UTF-8''data.csv`],
    ['my file (1).txt', `attachment; filename="my file (1).txt"; filename*=UTF-8''my%20file%20%281%29.txt`],
    ['résumé.pdf', `attachment; filename="resume.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`],
    ['日本.txt', `attachment; filename="__.txt"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt`],
    ['a"b\\c%d.txt', `attachment; filename="a_b_c_d.txt"; filename*=UTF-8''a%22b%5Cc%25d.txt`],
    ["it's*.txt", `attachment; filename="it's*.txt"; filename*=UTF-8''it%27s%2A.txt`],
    [
      'x\r\nSet-Cookie: a=b',
      `attachment; filename="x__Set-Cookie: a=b"; filename*=UTF-8''x%0D%0ASet-Cookie%3A%20a%3Db`,
    ],
    [
      'x"; filename="evil.exe',
      `attachment; filename="x_; filename=_evil.exe"; filename*=UTF-8''x%22%3B%20filename%3D%22evil.exe`,
    ],
    ['😀', `attachment; filename="_"; filename*=UTF-8''%F0%9F%98%80`],
    ['', `attachment; filename="download"; filename*=UTF-8''`],
  ])('H08 %j', (name, header) => {
    expect(contentDisposition(name)).toBe(header);
  });

  it('H08 never contains CR, LF or a bare quote inside the parameters', () => {
    for (const name of ['a\rb', 'a\nb', 'a"b', 'a\u0000b', '\u2028x']) {
      const header = contentDisposition(name);
      for (const bad of ['\r', '\n', '\u0000', '\u2028']) expect(header.includes(bad)).toBe(false);
      expect(header.match(/"/g)?.length).toBe(2);
    }
  });
});
