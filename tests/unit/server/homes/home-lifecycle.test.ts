/**
 * HomeLifecycle over the real EnvironmentService and TerminalService with a fake driver and fake
 * volumes: the order of removal, deletion and the next start under races, the reasons terminals
 * close with, and the nearly-full notice going out once per crossing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildConfig } from '../../../../server/config.js';
import { EnvironmentService } from '../../../../server/environments/environment-service.js';
import { HomeLifecycle } from '../../../../server/homes/home-lifecycle.js';
import { HomeService } from '../../../../server/homes/home-service.js';
import type { ServerEvent } from '../../../../server/protocol/terminal-wire.js';
import { SqliteStore } from '../../../../server/store/sqlite-store.js';
import { TerminalService } from '../../../../server/terminals/terminal-service.js';
import type { TerminalConnection } from '../../../../server/terminals/terminal.js';
import { FakeSandboxDriver } from '../environments/fake-sandbox-driver.js';
import { FakeHomeVolumes } from './fake-home-volumes.js';

const MiB = 1024 ** 2;
const region = 'us-east-1';
const owner = { id: 'user-1', username: 'ann' };
const key = { ownerId: owner.id, region };

class RecordingConnection implements TerminalConnection {
  readonly events: ServerEvent[] = [];
  output(): void {}
  event(event: ServerEvent): void {
    this.events.push(event);
  }
  close(): void {}
}

describe('HomeLifecycle', () => {
  let dir: string;
  let store: SqliteStore;
  let driver: FakeSandboxDriver;
  let volumes: FakeHomeVolumes;
  let environments: EnvironmentService;
  let terminals: TerminalService;
  let lifecycle: HomeLifecycle;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cove-lifecycle-'));
    store = new SqliteStore(join(dir, 'cove.db'));
    const config = buildConfig({ regions: [{ id: region, name: 'US East' }], sandbox: { graceS: 60 } });
    const log = pino({ level: 'silent' });
    driver = new FakeSandboxDriver();
    volumes = new FakeHomeVolumes();
    volumes.log = driver.calls;
    const homes = new HomeService({ volumes, config, store, log });
    environments = new EnvironmentService({ config, driverFactory: () => driver, log, homes });
    await environments.init();
    terminals = new TerminalService({ environments, sandbox: config.sandbox, log });
    lifecycle = new HomeLifecycle({ homes, environments, terminals, store, config, log });
    lifecycle.start();
  });

  afterEach(async () => {
    await lifecycle.close();
    await terminals.shutdown();
    environments.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

  it('deletes the home only after the container is gone, and a terminal opened meanwhile starts after both', async () => {
    const first = terminals.create(owner, region);
    await driver.nextShell();
    const connection = new RecordingConnection();
    first.attach(connection);
    driver.calls.length = 0;
    const remove = driver.remove.bind(driver);
    driver.remove = async (k) => {
      await new Promise((resolve) => setTimeout(resolve, 40));
      return remove(k);
    };

    const deleting = lifecycle.deleteHome(key);
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Opened while the removal is under way: its start must wait for the delete to finish.
    const secondShell = driver.nextShell();
    const second = terminals.create(owner, region);
    expect(await deleting).toEqual({ deleted: true, terminalsClosed: 1 });
    await secondShell;

    expect(connection.events).toContainEqual({ type: 'exit', code: null, reason: 'home-deleted' });
    const at = (call: string) => driver.calls.indexOf(call);
    expect(at(`remove ${region}/${owner.id}`)).toBeGreaterThanOrEqual(0);
    expect(at(`home.delete ${region}/${owner.id}`)).toBeGreaterThan(at(`remove ${region}/${owner.id}`));
    expect(driver.calls.lastIndexOf(`ensure ${region}/${owner.id}`)).toBeGreaterThan(
      at(`home.delete ${region}/${owner.id}`),
    );
    expect(second.closed).toBe(false);
  });

  it('restart closes terminals with reason "restarted", and their stop queues behind the removal', async () => {
    const terminal = terminals.create(owner, region);
    await driver.nextShell();
    const connection = new RecordingConnection();
    terminal.attach(connection);
    driver.calls.length = 0;

    expect(await lifecycle.restart(key)).toEqual({ terminalsClosed: 1 });
    await settle();
    expect(connection.events).toContainEqual({ type: 'exit', code: null, reason: 'restarted' });
    expect(driver.calls.filter((c) => !c.startsWith('home.'))).toEqual([
      `remove ${region}/${owner.id}`,
      `stop ${region}/${owner.id}`,
    ]);
    expect((await driver.status(key)).state).toBe('missing');
    expect(driver.calls).not.toContain(`home.delete ${region}/${owner.id}`);
  });

  it('sends the nearly-full notice once per crossing of 90 %, armed again below 85 %', async () => {
    const terminal = terminals.create(owner, region);
    await driver.nextShell();
    const connection = new RecordingConnection();
    const notices = () =>
      connection.events.filter((e) => e.type === 'notice' && e.kind === 'home-nearly-full');

    volumes.usedBytes = 85.5 * MiB; // 95 % of 90 MiB
    await lifecycle.checkUsage(key);
    expect(notices()).toHaveLength(0); // nobody attached yet: nothing is lost, it waits
    terminal.attach(connection); // attaching checks at once
    await settle();
    await lifecycle.checkUsage(key);
    expect(notices()).toHaveLength(1);
    expect(notices()[0]).toMatchObject({ usedBytes: 85.5 * MiB, totalBytes: 90 * MiB });
    expect(String((notices()[0] as { message: string }).message)).toMatch(/^Your home is 95% full/);

    volumes.usedBytes = 79 * MiB; // 87.8 %: still armed off
    await lifecycle.checkUsage(key);
    volumes.usedBytes = 85 * MiB;
    await lifecycle.checkUsage(key);
    expect(notices()).toHaveLength(1);

    volumes.usedBytes = 45 * MiB;
    await lifecycle.checkUsage(key);
    volumes.usedBytes = 83 * MiB;
    await lifecycle.checkUsage(key);
    expect(notices()).toHaveLength(2);
  });
});
