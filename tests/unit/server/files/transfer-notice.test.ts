import { describe, expect, it } from 'vitest';
import { transferNotice } from '../../../../server/files/file-routes.js';

describe('transferNotice', () => {
  it.each([
    [{ direction: 'upload', path: '~/data.csv', size: 12_300_000 }, 'uploaded ~/data.csv (12.3 MB)'],
    [{ direction: 'download', path: '~/x.tar.gz', size: 1_100_000 }, 'downloaded ~/x.tar.gz (1.1 MB)'],
    [
      { direction: 'upload', path: '~/a\u001b]0;pwn\u0007\nb', size: 5 },
      'uploaded ~/a\\x1b]0;pwn\\x07\\x0ab (5 B)',
    ],
  ] as const)('H01 %j → %s', (done, line) => {
    expect(transferNotice(done)).toBe(line);
  });
});
