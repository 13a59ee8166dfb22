import { describe, expect, it } from 'vitest';
import { CoveError } from '../../../../server/errors.js';
import { TerminalOpener, type TerminalOpenerDeps } from '../../../../server/terminals/terminal-opener.js';
import type { Terminal } from '../../../../server/terminals/terminal.js';
import type { RecordMode } from '../../../../server/store/store.js';

const owner = { id: 'u-1', username: 'ana' };
const region = 'us-east-1';

/** Deps that record which checks ran, in order; each check can be made to fail. */
function opener(fail: Partial<Record<'access' | 'reachable' | 'canStart' | 'quota' | 'home', unknown>> = {}) {
  const calls: string[] = [];
  const created: unknown[] = [];
  const check = (name: keyof typeof fail) => {
    calls.push(name);
    if (name in fail) throw fail[name];
  };
  const deps: TerminalOpenerDeps = {
    access: {
      accessFor: async (userId, accountId, permissionSet) => {
        calls.push('access');
        return (
          !('access' in fail) &&
          userId === owner.id &&
          accountId === '111122223333' &&
          permissionSet === 'Dev'
        );
      },
    },
    environments: {
      reachable: async () => {
        calls.push('reachable');
        return !('reachable' in fail);
      },
      assertCanStart: async () => check('canStart'),
    },
    usage: { assertTimeLeft: async () => check('quota') },
    homes: { prepare: async () => check('home') },
    terminals: {
      create: (who, where, binding) => {
        calls.push('create');
        created.push({ who, where, binding });
        return { id: 't-1' } as Terminal;
      },
    },
  };
  return { opener: new TerminalOpener(deps), calls, created };
}

async function refusal(promise: Promise<unknown>): Promise<CoveError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CoveError);
  return error as CoveError;
}

describe('TerminalOpener', () => {
  it('runs every check in the order a user should hear about them, then creates the terminal with its binding', async () => {
    const { opener: o, calls, created } = opener();
    await o.open(owner, region, { accountId: '111122223333', permissionSet: 'Dev' });
    expect(calls).toEqual(['access', 'reachable', 'canStart', 'quota', 'home', 'create']);
    expect(created).toEqual([
      { who: owner, where: region, binding: { accountId: '111122223333', permissionSet: 'Dev' } },
    ]);
  });

  it('a plain shell asks no access question', async () => {
    const { opener: o, calls, created } = opener();
    await o.open(owner, region);
    expect(calls).toEqual(['reachable', 'canStart', 'quota', 'home', 'create']);
    expect(created).toEqual([{ who: owner, where: region, binding: {} }]);
  });

  it('refuses half a binding, and an unassigned pair, with the same 403 before touching the engine', async () => {
    for (const request of [
      { accountId: '111122223333' },
      { permissionSet: 'Dev' },
      { accountId: '999999999999', permissionSet: 'Dev' },
    ]) {
      const { opener: o, calls } = opener();
      const error = await refusal(o.open(owner, region, request));
      expect([error.statusCode, error.code]).toEqual([403, 'COVE_ERR_TERMINAL_ACCESS']);
      expect(calls).not.toContain('reachable');
      expect(calls).not.toContain('create');
    }
  });

  it('an engine that does not answer is said before the quota or the home are looked at', async () => {
    const { opener: o, calls } = opener({ reachable: true });
    const error = await refusal(o.open(owner, region));
    expect(error.code).toBe('COVE_ERR_ENVIRONMENT_UNAVAILABLE');
    expect(calls).toEqual(['reachable']);
  });

  it('a home that cannot be made for lack of disk is a 507 that says open terminals carry on', async () => {
    const full = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    const { opener: o, calls } = opener({ home: new Error('mkfs failed', { cause: full }) });
    const error = await refusal(o.open(owner, region));
    expect([error.statusCode, error.code]).toEqual([507, 'COVE_ERR_TERMINAL_HOST_FULL']);
    expect(error.message).toMatch(/open terminals keep working/);
    expect(calls).not.toContain('create');
  });

  it('any other failure of a check reaches the caller unchanged and nothing is created', async () => {
    const quota = new CoveError('COVE_ERR_USAGE_QUOTA_EXHAUSTED', 429, 'used up');
    const { opener: o, calls } = opener({ quota });
    expect(await refusal(o.open(owner, region))).toBe(quota);
    expect(calls).toEqual(['reachable', 'canStart', 'quota']);
  });
});

describe('TerminalOpener and the recording policy', () => {
  const withPolicy = (policyFor: (userId: string, permissionSet?: string) => Promise<RecordMode>) => {
    const { opener: base } = opener();
    const created: unknown[] = [];
    const deps = (base as unknown as { deps: TerminalOpenerDeps }).deps;
    return {
      opener: new TerminalOpener({
        ...deps,
        terminals: {
          create: (who, where, binding, record) => {
            created.push({ binding, record });
            return { id: 't-1' } as Terminal;
          },
        },
        recordings: { policyFor },
      }),
      created,
    };
  };

  it('creates the terminal with the policy for its user and permission set', async () => {
    const asked: unknown[] = [];
    const { opener: o, created } = withPolicy(async (userId, permissionSet) => {
      asked.push([userId, permissionSet]);
      return permissionSet === 'Dev' ? 'output+input' : 'off';
    });
    await o.open(owner, region, { accountId: '111122223333', permissionSet: 'Dev' });
    await o.open(owner, region);
    expect(asked).toEqual([
      [owner.id, 'Dev'],
      [owner.id, undefined],
    ]);
    expect(created).toEqual([
      { binding: { accountId: '111122223333', permissionSet: 'Dev' }, record: 'output+input' },
      { binding: {}, record: 'off' },
    ]);
  });

  it('refuses the terminal when the policy cannot be read, rather than open it unrecorded', async () => {
    const unavailable = new CoveError('COVE_ERR_STORE_UNAVAILABLE', 503, 'The database is not answering.');
    const { opener: o, created } = withPolicy(() => Promise.reject(unavailable));
    expect(await refusal(o.open(owner, region))).toBe(unavailable);
    expect(created).toEqual([]);
  });
});
