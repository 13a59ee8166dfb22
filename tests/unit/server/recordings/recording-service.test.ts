import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordingService, strictestRecordMode } from '../../../../server/recordings/recording-service.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';

const day = 86_400_000;
const silent = { warn: () => undefined, info: () => undefined };

describe('strictestRecordMode', () => {
  it('records when any policy asks, the most thorough winning', () => {
    expect(strictestRecordMode([])).toBe('off');
    expect(strictestRecordMode(['off', 'off'])).toBe('off');
    expect(strictestRecordMode(['off', 'output'])).toBe('output');
    expect(strictestRecordMode(['output+input', 'output', 'off'])).toBe('output+input');
  });
});

describe('RecordingService', () => {
  let dir: string;
  let store: SqliteStore;
  let now: number;
  let service: RecordingService;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cove-recording-service-'));
    store = new SqliteStore(join(dir, 'cove.db'));
    now = 1000 * day;
    service = new RecordingService({
      store,
      dir: join(dir, 'recordings'),
      maxBytes: 1024 * 1024,
      queueBytes: 1024 * 1024,
      retentionDays: 30,
      now: () => now,
      log: silent,
    });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("takes the policy from the user's groups and the terminal's permission set", async () => {
    const user = await store.users.create({ username: 'ana' });
    await store.permissionSets.create({
      name: 'Audited',
      sessionDurationS: 3600,
      roleArnTemplate: 'arn:aws:iam::{accountId}:role/x',
      record: 'output+input',
    });
    expect(await service.policyFor(user.id)).toBe('off');
    expect(await service.policyFor(user.id, 'Audited')).toBe('output+input');
    expect(await service.policyFor(user.id, 'Missing')).toBe('off');
    const group = await store.groups.create({ name: 'class', record: 'output' });
    await store.groups.addMember(group.id, user.id);
    expect(await service.policyFor(user.id)).toBe('output');
    expect(await service.policyFor(user.id, 'Audited')).toBe('output+input');
  });

  it('records through its tap and writes the record at the end', async () => {
    const user = await store.users.create({ username: 'ana' });
    const tap = service.start({ terminalId: 't1', userId: user.id, region: 'eu-west-1' }, 'output');
    tap.resize(100, 30);
    tap.output(Buffer.from('hello\r\n'));
    now += 5000;
    tap.end();
    tap.end();
    await service.drain();
    const [recording] = await store.recordings.search({ userId: user.id });
    expect(recording).toMatchObject({
      terminalId: 't1',
      username: 'ana',
      region: 'eu-west-1',
      mode: 'output',
      endedAt: now,
      complete: true,
    });
    const { size, stream } = await service.open(recording?.id ?? '');
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).length).toBe(size);
    expect(size).toBe(recording?.bytes);
    expect(Buffer.concat(chunks).toString()).toContain('hello');
  });

  it('deletes recordings past their retention, files and records, and audits how many', async () => {
    mkdirSync(join(dir, 'recordings'));
    const make = async (id: string, startedAt: number) => {
      writeFileSync(join(dir, 'recordings', `${id}.cast`), '{"version":2,"width":80,"height":24}\n');
      await store.recordings.create({
        id,
        terminalId: 't',
        userId: 'u',
        username: 'ana',
        region: 'eu-west-1',
        accountId: null,
        permissionSet: null,
        mode: 'output',
        startedAt,
        storage: 'file',
        location: `${id}.cast`,
      });
    };
    const old = '00000000-0000-4000-8000-000000000001';
    const recent = '00000000-0000-4000-8000-000000000002';
    await make(old, now - 31 * day);
    await make(recent, now - 29 * day);
    expect(await service.sweep()).toBe(1);
    expect(existsSync(join(dir, 'recordings', `${old}.cast`))).toBe(false);
    expect(existsSync(join(dir, 'recordings', `${recent}.cast`))).toBe(true);
    expect((await store.recordings.search({})).map((r) => r.id)).toEqual([recent]);
    const [entry] = await store.audit.list({ action: 'recording.expired' });
    expect(entry?.details).toEqual({ count: 1, retentionDays: 30 });
    expect(await service.sweep()).toBe(0);
  });
});
