/**
 * N01 (issue 26, "names that lie"): a new or renamed user, group or account whose name reads like
 * an existing one (the same Unicode TR39 confusable skeleton) is refused with a 400 that names the
 * existing look-alike, through every path that makes or renames one; nothing is created.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminCaller,
  startAdminApp,
  type AdminTestContext,
} from '../integration/server/directory/admin-client.js';

let ctx: AdminTestContext;
let api: ReturnType<typeof adminCaller>;

const code = 'COVE_ERR_DIRECTORY_NAME_LOOKALIKE';

beforeAll(async () => {
  ctx = await startAdminApp();
  api = adminCaller(ctx);
  expect((await api('POST', '/api/admin/users', { body: { username: 'admin' } })).statusCode).toBe(201);
  expect((await api('POST', '/api/admin/groups', { body: { name: 'Students' } })).statusCode).toBe(201);
  expect(
    (await api('POST', '/api/admin/accounts', { body: { accountId: '111111111111', name: 'Production' } }))
      .statusCode,
  ).toBe(201);
});
afterAll(async () => {
  await ctx.close();
});

async function names(kind: 'users' | 'groups' | 'accounts'): Promise<string[]> {
  const list = (await api('GET', `/api/admin/${kind}`)).json<{ username?: string; name?: string }[]>();
  return list.map((entry) => entry.username ?? entry.name ?? '').sort();
}

describe('N01 look-alike names are refused', () => {
  it('N01 a user named admın (dotless ı), аdmin (Cyrillic а) or adrnin beside admin: 400 naming admin', async () => {
    const before = await names('users');
    for (const username of ['adm\u0131n', '\u0430dmin', 'adrnin']) {
      const res = await api('POST', '/api/admin/users', { body: { username } });
      expect(res.statusCode, username).toBe(400);
      const body = res.json<{ code: string; message: string; lookalike: string; field: string }>();
      expect(body).toMatchObject({ code, lookalike: 'admin', field: 'username' });
      expect(body.message).toContain('looks like the existing user "admin"');
    }
    const body = (await api('POST', '/api/admin/users', { body: { username: 'adm\u0131n' } })).json<{
      message: string;
    }>();
    expect(body.message).toContain('U+0131');
    expect(await names('users')).toEqual(before);
    // A name that only shares letters is still fine.
    expect((await api('POST', '/api/admin/users', { body: { username: 'admin2' } })).statusCode).toBe(201);
  });

  it('N01 a group created or renamed to Ѕtudents (Cyrillic Ѕ): 400 naming Students', async () => {
    const before = await names('groups');
    const created = await api('POST', '/api/admin/groups', { body: { name: '\u0405tudents' } });
    expect(created.statusCode).toBe(400);
    expect(created.json()).toMatchObject({ code, lookalike: 'Students', field: 'name' });
    expect(created.json<{ message: string }>().message).toContain('looks like the existing group "Students"');
    const other = (await api('POST', '/api/admin/groups', { body: { name: 'Teachers' } })).json<{
      id: string;
    }>();
    const renamed = await api('PATCH', `/api/admin/groups/${other.id}`, { body: { name: 'Stud\u0435nts' } });
    expect(renamed.statusCode).toBe(400);
    expect(renamed.json()).toMatchObject({ code, lookalike: 'Students' });
    expect(await names('groups')).toEqual([...before, 'Teachers'].sort());
  });

  it('N01 an account created or renamed to Pr\u043eduction (Cyrillic о): 400 naming Production', async () => {
    const created = await api('POST', '/api/admin/accounts', {
      body: { accountId: '222222222222', name: 'Pr\u043educti\u043en' },
    });
    expect(created.statusCode).toBe(400);
    expect(created.json()).toMatchObject({ code, lookalike: 'Production', field: 'name' });
    expect((await api('GET', '/api/admin/accounts/222222222222')).statusCode).toBe(404);
    expect(
      (await api('POST', '/api/admin/accounts', { body: { accountId: '333333333333', name: 'Staging' } }))
        .statusCode,
    ).toBe(201);
    const renamed = await api('PATCH', '/api/admin/accounts/333333333333', {
      body: { name: 'Producti\u043en' },
    });
    expect(renamed.statusCode).toBe(400);
    expect(renamed.json()).toMatchObject({ code, lookalike: 'Production' });
    expect(await names('accounts')).toEqual(['Production', 'Staging']);
  });

  it('N01 a renamed group or account may keep looking like itself', async () => {
    const students = (await api('GET', '/api/admin/groups')).json<{ id: string; name: string }[]>();
    const id = students.find((g) => g.name === 'Students')?.id ?? '';
    expect((await api('PATCH', `/api/admin/groups/${id}`, { body: { name: 'students' } })).statusCode).toBe(
      200,
    );
    expect(
      (await api('PATCH', '/api/admin/accounts/111111111111', { body: { name: 'PRODUCTION' } })).statusCode,
    ).toBe(200);
  });

  it('N01 a CSV roster with look-alikes of existing names or of its own rows creates nothing', async () => {
    const users = await names('users');
    const groups = await names('groups');
    const csv = [
      'name,email,group',
      'adm\u0131n,,',
      'carol,,\u0405tudents',
      'dave,,Class A',
      'eve,,\u0421lass A',
      'frank,,',
      'fr\u0430nk,,',
    ].join('\n');
    const res = await api('POST', '/api/admin/users/bulk', { body: csv });
    expect(res.statusCode).toBe(400);
    const body = res.json<{ message: string; rows: { row: number; problems: string[] }[] }>();
    const byRow = new Map(body.rows.map((r) => [r.row, r.problems.join(' | ')]));
    expect(byRow.get(2)).toContain('looks like the existing user "admin"');
    expect(byRow.get(3)).toContain('looks like the existing group "students"');
    expect(byRow.get(5)).toContain('looks like "Class A" on row 4');
    expect(byRow.get(7)).toContain('looks like "frank" on row 6');
    expect([...byRow.keys()].sort()).toEqual([2, 3, 5, 7]);
    expect(body.message).toContain('Nothing was created');
    expect(await names('users')).toEqual(users);
    expect(await names('groups')).toEqual(groups);
  });
});
