import { describe, expect, it } from 'vitest';
import { safeLocalPath } from '../../../../server/auth/safe-local-path.js';

describe('safeLocalPath', () => {
  it.each([
    [undefined, '/'],
    ['/shell/us-east-1?account=1', '/shell/us-east-1?account=1'],
    ['/admin#users', '/admin#users'],
    ['https://evil.example/', '/'],
    ['//evil.example/', '/'],
    ['/\\evil.example', '/'],
    ['/%0d%0aSet-Cookie:x', '/%0d%0aSet-Cookie:x'],
    ['/a\nb', '/'],
    ['/login?next=/admin', '/'],
    ['javascript:alert(1)', '/'],
  ])('%s → %s', (raw, expected) => {
    expect(safeLocalPath(raw)).toBe(expected);
  });
});
