import { describe, expect, it } from 'vitest';
import {
  isCodeVerifier,
  isLoopbackRedirect,
  newUserCode,
  normalizeUserCode,
  s256,
  userCodeAlphabet,
} from '../../../../server/sso/sso-codes.js';

describe('user codes', () => {
  it('are two groups of four letters from the unambiguous alphabet', () => {
    for (let i = 0; i < 200; i++)
      expect(newUserCode()).toMatch(/^[BCDFGHJKMNPQRTVWXY]{4}-[BCDFGHJKMNPQRTVWXY]{4}$/);
    expect(userCodeAlphabet).toBe('BCDFGHJKMNPQRTVWXY');
  });

  it('normalizes what a person types, and rejects what cannot be a code', () => {
    expect(normalizeUserCode('bcdf-ghjk')).toBe('BCDF-GHJK');
    expect(normalizeUserCode(' BCDF GHJK ')).toBe('BCDF-GHJK');
    expect(normalizeUserCode('BCDFGHJK')).toBe('BCDF-GHJK');
    expect(normalizeUserCode('BCDF-GHJ')).toBeUndefined();
    expect(normalizeUserCode('BCDF-GHJA')).toBeUndefined();
    expect(normalizeUserCode('BCDF-GHJ1')).toBeUndefined();
    expect(normalizeUserCode("BCDF-GHJK' OR 1=1")).toBeUndefined();
  });
});

describe('loopback redirect addresses', () => {
  it('accepts plain http to 127.0.0.1, localhost and [::1] on any port', () => {
    for (const uri of [
      'http://127.0.0.1/oauth/callback',
      'http://127.0.0.1:49152/oauth/callback',
      'http://localhost:8080/cb?x=1',
      'http://[::1]:1234/oauth/callback',
    ])
      expect(isLoopbackRedirect(uri), uri).toBe(true);
  });

  it('refuses every other address', () => {
    for (const uri of [
      'https://127.0.0.1/oauth/callback',
      'http://127.0.0.2/oauth/callback',
      'http://evil.example/oauth/callback',
      'http://127.0.0.1.evil.example/cb',
      'http://localhost.evil.example/cb',
      'http://user@127.0.0.1/cb',
      'http://127.0.0.1@evil.example/cb',
      'http://127.0.0.1/cb#fragment',
      'javascript:alert(1)',
      '//127.0.0.1/cb',
      'not a url',
    ])
      expect(isLoopbackRedirect(uri), uri).toBe(false);
  });
});

describe('PKCE', () => {
  it('computes the S256 challenge of RFC 7636 appendix B', () => {
    expect(s256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
  });

  it('takes verifiers of 43 to 128 unreserved characters only', () => {
    expect(isCodeVerifier('a'.repeat(43))).toBe(true);
    expect(isCodeVerifier('a'.repeat(128))).toBe(true);
    expect(isCodeVerifier('a'.repeat(42))).toBe(false);
    expect(isCodeVerifier('a'.repeat(129))).toBe(false);
    expect(isCodeVerifier(`${'a'.repeat(42)}+`)).toBe(false);
  });
});
