import { describe, expect, it } from 'vitest';
import { checkGitLink } from '../../../../server/links/git-link.js';

const any = ['https://'];

describe('checkGitLink', () => {
  it('takes an https repository and names the folder after its last segment without .git', () => {
    expect(checkGitLink('https://github.com/acme/tools.git', any)).toEqual({
      ok: true,
      link: { url: 'https://github.com/acme/tools.git', folder: 'tools' },
    });
    expect(checkGitLink('https://git.example.org/team/runbook/', any)).toEqual({
      ok: true,
      link: { url: 'https://git.example.org/team/runbook/', folder: 'runbook' },
    });
  });

  it.each([
    ['javascript:alert(1)', 'javascript:'],
    ['file:///etc/passwd', 'file:'],
    ['ssh://git@github.com/acme/tools.git', 'ssh:'],
    ['http://github.com/acme/tools.git', 'http:'],
    ['ext::sh -c touch% /tmp/pwned', undefined],
    ['git@github.com:acme/tools.git', undefined],
  ])('refuses %s', (raw, scheme) => {
    const result = checkGitLink(raw, any);
    expect(result.ok).toBe(false);
    if (!result.ok && scheme) expect(result).toEqual({ ok: false, problem: 'scheme', scheme });
  });

  it('refuses a user name or token in the URL', () => {
    expect(checkGitLink('https://token@github.com/acme/tools.git', any)).toEqual({
      ok: false,
      problem: 'credentials',
    });
    expect(checkGitLink('https://u:p@github.com/acme/tools.git', any)).toMatchObject({
      problem: 'credentials',
    });
  });

  it.each([
    'https://github.com/acme/tools.git\u0000',
    'https://github.com/acme/to\u202Eols.git',
    'https://github.com/acme/tools.git\r\n',
    'https://github.com/acme/tools.git\u001b[2J',
    'https://github.com/acme/my tools.git',
    'https://github.com/acme/tools.git?x=1',
    'https://github.com/acme/tools.git#main',
    `https://github.com/${'a'.repeat(2100)}`,
    '',
  ])('refuses hidden characters, spaces, queries, fragments and over-long URLs: %j', (raw) => {
    expect(checkGitLink(raw, any)).toMatchObject({ ok: false, problem: 'invalid' });
  });

  it('holds the URL to the configured prefixes, which cannot match a longer host name', () => {
    const prefixes = ['https://github.com/acme/'];
    expect(checkGitLink('https://github.com/acme/tools.git', prefixes).ok).toBe(true);
    expect(checkGitLink('https://github.com/evil/tools.git', prefixes)).toMatchObject({
      problem: 'not-allowed',
    });
    expect(checkGitLink('https://github.com.evil.io/acme/tools.git', prefixes)).toMatchObject({
      problem: 'not-allowed',
    });
    expect(checkGitLink('https://github.com/acme/tools.git', [])).toMatchObject({ problem: 'not-allowed' });
  });

  it.each([
    'https://github.com/',
    'https://github.com/acme/..%2F..%2Fetc',
    'https://github.com/acme/.hidden',
    'https://github.com/acme/-x',
  ])('refuses a repository whose name is no plain folder: %s', (raw) => {
    expect(checkGitLink(raw, any)).toMatchObject({ ok: false, problem: 'folder' });
  });
});
