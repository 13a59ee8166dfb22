/**
 * Session recordings end to end on the security rig (real listening Cove, real SQLite, fake
 * sandbox driver whose shell echoes): the policy on a group or permission set, the banner flag,
 * the asciicast file an admin fetches (held to the v2 definition), and the attack cases REC01-REC05
 * (proposed in README.md, not yet in SECURITY-TESTS.md).
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sizeLimitMarker } from '../../server/recordings/asciicast-recorder.js';
import { castOutput, parseAsciicast } from '../helpers/asciicast.js';
import { ready, region, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';

interface RecordingView {
  id: string;
  userId: string;
  username: string;
  terminalId: string;
  mode: string;
  endedAt: string | null;
  bytes: number;
  complete: boolean;
  accountId: string | null;
  permissionSet: string | null;
}

const maxBytes = 8192;
let rig: SecurityRig;
let admin: RigUser;
let watched: RigUser;
let other: RigUser;
let groupId: string;

beforeAll(async () => {
  rig = await startSecurityRig({ recordings: { maxBytes } });
  admin = await rig.user('admin', { admin: true });
  watched = await rig.user('watched');
  other = await rig.user('other');
  const group = await rig.request(admin, 'POST', '/api/admin/groups', {
    name: 'Recorded class',
    record: 'output',
  });
  expect(group.statusCode, group.body).toBe(201);
  expect(group.json<{ record: string }>().record).toBe('output');
  groupId = group.json<{ id: string }>().id;
  await rig.t.store.groups.addMember(groupId, watched.id);
});
afterAll(async () => {
  await rig?.close();
});

const list = async (who: RigUser, query = ''): Promise<RecordingView[]> => {
  const response = await rig.request(who, 'GET', `/api/admin/recordings${query}`);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{ recordings: RecordingView[] }>().recordings;
};

/** Opens a terminal, types `line`, waits for its echo, closes it; returns the terminal id. */
const session = async (who: RigUser, line: string, body: Record<string, string> = {}): Promise<string> => {
  const id = await rig.createTerminal(who, body);
  const client = await rig.connect(who, id);
  await ready(client);
  client.send(line);
  await client.waitForText(line.trim());
  client.close();
  const closed = await rig.request(who, 'DELETE', `/api/environments/${region}/terminals/${id}`);
  expect(closed.statusCode).toBe(204);
  return id;
};

/** The recording of terminal `id`, once it has ended. */
const ended = async (terminalId: string): Promise<RecordingView> => {
  for (let i = 0; i < 100; i++) {
    const found = (await list(admin)).find((r) => r.terminalId === terminalId);
    if (found?.endedAt) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ended recording for ${terminalId}`);
};

const cast = async (who: RigUser, id: string) => rig.request(who, 'GET', `/api/admin/recordings/${id}/cast`);

describe('recordings', () => {
  it('records a member of a recorded group: the page is told, the admin finds and fetches a valid asciicast', async () => {
    const created = await rig.request(watched, 'POST', `/api/environments/${region}/terminals`, {});
    expect(created.json()).toMatchObject({ recorded: 'output' });
    const listed = await rig.request(watched, 'GET', `/api/environments/${region}/terminals`);
    expect(listed.json<{ terminals: { recorded?: string }[] }>().terminals[0]?.recorded).toBe('output');
    await rig.request(
      watched,
      'DELETE',
      `/api/environments/${region}/terminals/${created.json<{ terminalId: string }>().terminalId}`,
    );

    const terminalId = await session(watched, 'echo recorded-hello\r');
    const recording = await ended(terminalId);
    expect(recording).toMatchObject({
      userId: watched.id,
      username: watched.username,
      mode: 'output',
      complete: true,
    });
    const response = await cast(admin, recording.id);
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/x-asciicast; charset=utf-8');
    const parsed = parseAsciicast(response.body);
    expect(parsed.header).toMatchObject({ version: 2, width: 80, height: 24 });
    expect(castOutput(parsed)).toContain('echo recorded-hello');
    expect(parsed.events.some((e) => e[1] === 'i')).toBe(false);
    expect(recording.bytes).toBe(Buffer.byteLength(response.body));
    const audit = await rig.t.store.audit.list({ action: 'recording.viewed' });
    expect(audit[0]).toMatchObject({ actorId: admin.id, target: recording.id });
  });

  it('does not record a user outside the policy', async () => {
    const created = await rig.request(other, 'POST', `/api/environments/${region}/terminals`, {});
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({ terminalId: expect.any(String) as string });
    await rig.request(
      other,
      'DELETE',
      `/api/environments/${region}/terminals/${created.json<{ terminalId: string }>().terminalId}`,
    );
    expect((await list(admin, `?user=${other.username}`)).length).toBe(0);
  });

  it('records input too when the group says output+input, and searches by user and time', async () => {
    const patched = await rig.request(admin, 'PATCH', `/api/admin/groups/${groupId}`, {
      record: 'output+input',
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const before = new Date().toISOString();
    const terminalId = await session(watched, 'echo typed\r');
    const recording = await ended(terminalId);
    expect(recording.mode).toBe('output+input');
    const parsed = parseAsciicast((await cast(admin, recording.id)).body);
    expect(
      parsed.events
        .filter((e) => e[1] === 'i')
        .map((e) => e[2])
        .join(''),
    ).toBe('echo typed\r');
    expect((await list(admin, `?user=${watched.username}&from=${before}`)).map((r) => r.id)).toEqual([
      recording.id,
    ]);
    expect(await list(admin, `?user=${other.username}`)).toEqual([]);
    expect(await list(admin, `?to=${before}&user=${watched.username}`)).not.toContainEqual(
      expect.objectContaining({ id: recording.id }),
    );
    await rig.request(admin, 'PATCH', `/api/admin/groups/${groupId}`, { record: 'output' });
  });

  it('REC01 non-admins get 404 for the list, a record and a file, their own included; no cookie gets 401', async () => {
    const terminalId = await session(watched, 'echo mine\r');
    const recording = await ended(terminalId);
    for (const who of [watched, other]) {
      for (const url of [
        '/api/admin/recordings',
        `/api/admin/recordings/${recording.id}`,
        `/api/admin/recordings/${recording.id}/cast`,
      ]) {
        const response = await rig.request(who, 'GET', url);
        expect(response.statusCode, url).toBe(404);
        expect(response.json()).toEqual({
          code: 'COVE_ERR_RECORDING_NOT_FOUND',
          message: 'That recording does not exist (it may have expired).',
        });
        expect(response.body).not.toContain('echo mine');
      }
    }
    expect(
      (await rig.request(undefined, 'GET', `/api/admin/recordings/${recording.id}/cast`)).statusCode,
    ).toBe(401);
  });

  it('REC02 traversal and made-up ids are one 404, never a file', async () => {
    writeFileSync(join(rig.t.dataDir, 'secret.cast'), 'SECRET');
    const ids = [
      '..%2fsecret',
      '..%2F..%2Fcove.db',
      '%2e%2e%2fsecret',
      '..',
      'secret',
      '00000000-0000-0000-0000-000000000000',
      '..%5csecret',
      `${'a'.repeat(36)}`,
    ];
    for (const id of ids) {
      for (const suffix of ['', '/cast']) {
        const response = await rig.request(admin, 'GET', `/api/admin/recordings/${id}${suffix}`);
        expect(response.statusCode, id).toBe(404);
        expect(response.body).not.toContain('SECRET');
        expect(response.body).not.toContain('SQLite');
      }
    }
    // A record whose location was tampered with in the database is still not followed out.
    await rig.t.store.recordings.create({
      id: '11111111-1111-4111-8111-111111111111',
      terminalId: 't',
      userId: watched.id,
      username: watched.username,
      region,
      accountId: null,
      permissionSet: null,
      mode: 'output',
      startedAt: Date.now(),
      storage: 'file',
      location: '../secret.cast',
    });
    const tampered = await cast(admin, '11111111-1111-4111-8111-111111111111');
    expect(tampered.statusCode).toBe(404);
    expect(tampered.body).not.toContain('SECRET');
  });

  it('REC03 a recording larger than its bound is cut with a marker, marked incomplete and audited; the terminal carries on', async () => {
    const id = await rig.createTerminal(watched);
    const client = await rig.connect(watched, id);
    await ready(client);
    const shell = rig.driver.shells.at(-1);
    if (!shell) throw new Error('no shell');
    for (let i = 0; i < 40; i++)
      shell.stream.push(Buffer.from(`${String(i).padStart(3, '0')} ${'z'.repeat(500)}\r\n`));
    client.send('echo still-alive\r');
    await client.waitForText('still-alive');
    client.close();
    await rig.request(watched, 'DELETE', `/api/environments/${region}/terminals/${id}`);
    const recording = await ended(id);
    expect(recording.complete).toBe(false);
    const body = (await cast(admin, recording.id)).body;
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(maxBytes);
    const parsed = parseAsciicast(body);
    expect(parsed.events.at(-1)?.slice(1)).toEqual(['m', sizeLimitMarker]);
    expect(castOutput(parsed)).not.toContain('still-alive');
    const audited = await rig.t.store.audit.list({ action: 'recording.incomplete' });
    expect(audited.find((e) => e.target === recording.id)?.details).toMatchObject({ problem: 'size-limit' });
  });

  it('REC04 a recording that cannot be written (disk gone) never breaks the terminal; it is marked incomplete and audited', async () => {
    const dir = join(rig.t.dataDir, 'recordings');
    const kept = readdirSync(dir);
    rmSync(dir, { recursive: true, force: true });
    writeFileSync(dir, 'not a directory');
    try {
      const id = await rig.createTerminal(watched);
      const client = await rig.connect(watched, id);
      await ready(client);
      client.send('echo works-anyway\r');
      await client.waitForText('works-anyway');
      client.close();
      await rig.request(watched, 'DELETE', `/api/environments/${region}/terminals/${id}`);
      const recording = await ended(id);
      expect(recording).toMatchObject({ complete: false, bytes: 0 });
      const audited = await rig.t.store.audit.list({ action: 'recording.incomplete' });
      expect(audited.find((e) => e.target === recording.id)?.details).toMatchObject({
        problem: 'write-failed',
      });
      const missing = await cast(admin, recording.id);
      expect(missing.statusCode).toBe(404);
      expect(missing.json<{ code: string }>().code).toBe('COVE_ERR_RECORDING_FILE_MISSING');
    } finally {
      rmSync(dir, { force: true });
      mkdirSync(dir);
      expect(kept.length).toBeGreaterThan(0);
    }
  });

  it('REC05 the policy on a permission set records that identity only, and search by identity finds it', async () => {
    const sets = await rig.request(admin, 'GET', '/api/admin/permission-sets');
    const set = sets.json<{ id: string; name: string }[]>()[0];
    if (!set) throw new Error('no seeded permission set');
    const patched = await rig.request(admin, 'PATCH', `/api/admin/permission-sets/${set.id}`, {
      record: 'output',
    });
    expect(patched.json<{ record: string }>().record).toBe('output');
    await rig.request(admin, 'POST', '/api/admin/accounts', {
      accountId: '444455556666',
      name: 'Recorded acct',
    });
    const assigned = await rig.request(admin, 'POST', '/api/admin/assignments', {
      principalType: 'user',
      principalId: other.id,
      accountId: '444455556666',
      permissionSet: set.name,
    });
    expect(assigned.statusCode, assigned.body).toBe(201);
    const terminalId = await session(other, 'echo as-role\r', {
      accountId: '444455556666',
      permissionSet: set.name,
    });
    const recording = await ended(terminalId);
    expect(recording).toMatchObject({ accountId: '444455556666', permissionSet: set.name, userId: other.id });
    expect(
      (await list(admin, `?accountId=444455556666&permissionSet=${encodeURIComponent(set.name)}`)).map(
        (r) => r.id,
      ),
    ).toEqual([recording.id]);
    // The same user's plain shell is not recorded.
    const plain = await rig.request(other, 'POST', `/api/environments/${region}/terminals`, {});
    expect(plain.json<{ recorded?: string }>().recorded).toBeUndefined();
    await rig.request(
      other,
      'DELETE',
      `/api/environments/${region}/terminals/${plain.json<{ terminalId: string }>().terminalId}`,
    );
    expect(readFileSync(join(rig.t.dataDir, 'recordings', `${recording.id}.cast`), 'utf8')).toContain(
      'as-role',
    );
  });
});
