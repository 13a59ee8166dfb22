import { describe, expect, it } from 'vitest';
import {
  HOLDER_ASK_CODE,
  HOLDER_DETACHED,
  HOLDER_GONE,
  holderCommand,
  holderOutcome,
  parseHeldShells,
  parseHolderExitCode,
} from '../../../../sandbox/holder/holder-protocol.js';

describe('holder protocol', () => {
  it('starts a new held shell with its command, and reattaches from a whole byte number', () => {
    expect(holderCommand({ name: 't1', create: true }, ['bash', '-l'])).toEqual([
      '/usr/local/bin/cove-terminal',
      'attach',
      't1',
      'bash',
      '-l',
    ]);
    expect(holderCommand({ name: 't1', create: false, from: 12.7 }, ['bash'])).toEqual([
      '/usr/local/bin/cove-terminal',
      'reattach',
      't1',
      '12',
    ]);
    expect(holderCommand({ name: 't1', create: false, from: -5 }, [])[3]).toBe('0');
    expect(holderCommand({ name: 't1', create: false }, [])[3]).toBe('0');
  });

  it('reads the client exit code as detached, ask, or the shell exit code', () => {
    expect(holderOutcome(HOLDER_DETACHED)).toEqual({ kind: 'detached' });
    // Engine gone, client maybe still running: the shell may live on.
    expect(holderOutcome(null)).toEqual({ kind: 'detached' });
    expect(holderOutcome(HOLDER_ASK_CODE)).toEqual({ kind: 'ask' });
    expect(holderOutcome(HOLDER_GONE)).toEqual({ kind: 'exited', code: null });
    expect(holderOutcome(0)).toEqual({ kind: 'exited', code: 0 });
    expect(holderOutcome(130)).toEqual({ kind: 'exited', code: 130 });
  });

  it('keeps only valid names from a list made inside the environment', () => {
    expect(parseHeldShells(' t1\nbad name\n\nt-2_x\n../etc\n')).toEqual(['t1', 't-2_x']);
    expect(parseHeldShells(`${'a'.repeat(65)}\n`)).toEqual([]);
  });

  it('reads an exit code only when it is one', () => {
    expect(parseHolderExitCode('255\n')).toBe(255);
    expect(parseHolderExitCode('unknown')).toBeNull();
    expect(parseHolderExitCode('1234')).toBeNull();
  });
});
