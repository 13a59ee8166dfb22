/**
 * Persistent homes on the real Docker engine and real loop mounts (96 MiB homes for speed): the
 * home outlives its container and the server, fills up with ENOSPC while the shell keeps working,
 * is separate per region, restarts keep it, delete gives a fresh one, and the retention sweep
 * deletes only what is past the period. Tests run in order and share one server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvironmentInfo } from '../../../../server/protocol/api.js';
import type { ServerEvent } from '../../../../server/protocol/terminal-wire.js';
import { dayMs, HomeTestServer, MiB, regionA, regionB, type HomeTestUser } from './home-test-server.js';

describe('persistent homes on Docker and loop mounts', () => {
  let server: HomeTestServer;
  let alice: HomeTestUser;
  let bob: HomeTestUser;

  beforeAll(async () => {
    server = await HomeTestServer.start();
    alice = await server.user('alice');
    bob = await server.user('bob');
  });

  afterAll(async () => {
    await server?.destroy();
  });

  const environment = async (user: HomeTestUser, region = regionA): Promise<EnvironmentInfo> => {
    const response = await server.request(user, 'GET', `/api/environments/${region}`);
    expect(response.statusCode, response.body).toBe(200);
    return response.json<EnvironmentInfo>();
  };

  it('keeps a file when the container is removed, and the next terminal gets a new container', async () => {
    expect(await environment(alice)).toEqual({ status: 'missing', home: null });
    const first = await server.shell(alice);
    await server.run(first, 'echo kept-$((6*7)) > ~/note.txt; sync');
    const before = await server.app.environments.status({ ownerId: alice.id, region: regionA });
    first.close();
    await server.app.environments.remove({ ownerId: alice.id, region: regionA });
    expect((await environment(alice)).status).toBe('missing');

    const second = await server.shell(alice);
    expect(await server.run(second, 'cat ~/note.txt')).toContain('kept-42');
    const after = await server.app.environments.status({ ownerId: alice.id, region: regionA });
    expect(after.id).not.toBe(before.id);

    const info = await environment(alice);
    expect(info.status).toBe('running');
    expect(info.home?.totalBytes).toBeGreaterThan(80 * MiB);
    expect(info.home?.totalBytes).toBeLessThanOrEqual(96 * MiB);
    const lastUsed = Date.parse(info.home?.lastUsedAt ?? '');
    expect(Math.abs(lastUsed - Date.now())).toBeLessThan(60_000);
    expect(Date.parse(info.home?.expiresAt ?? '') - lastUsed).toBe(120 * dayMs);
  });

  it("seeds a new home with the skeleton, and region A's file does not exist in region B", async () => {
    const shell = await server.shell(alice, regionB);
    const listing = await server.run(shell, 'ls -A ~; test -e ~/note.txt && echo FOUND || echo ABSENT');
    expect(listing).toContain('.bashrc');
    expect(listing).toContain('.profile');
    expect(listing).toContain('ABSENT');
    expect(listing).not.toContain('lost+found');
    const [a, b] = [await environment(alice, regionA), await environment(alice, regionB)];
    expect(a.home).not.toBeNull();
    expect(b.home).not.toBeNull();
    shell.close();
  });

  it('stops dd with ENOSPC at the size limit, the shell still answers, a notice comes, and rm frees space at once', async () => {
    const shell = await server.shell(alice);
    const dd = await server.run(shell, 'dd if=/dev/zero of=~/big bs=1M count=200 2>&1; sync', 60_000);
    expect(dd).toMatch(/No space left on device/);
    expect(await server.run(shell, 'echo ok-$((40+2))')).toContain('ok-42');
    const full = await environment(alice);
    expect(full.home?.usedBytes ?? 0).toBeGreaterThan(0.95 * (full.home?.totalBytes ?? Infinity));

    await shell.waitFor(
      () => shell.events.some((e) => e.type === 'notice' && e.kind === 'home-nearly-full'),
      'the home-nearly-full notice',
      15_000,
    );
    const sent = shell.events.filter(
      (e): e is Extract<ServerEvent, { type: 'notice' }> =>
        e.type === 'notice' && e.kind === 'home-nearly-full',
    );
    expect(sent).toHaveLength(1);
    expect(String(sent[0]?.message)).toMatch(/Your home is \d+% full/);

    await server.run(shell, 'rm ~/big; sync');
    const freed = await environment(alice);
    expect(freed.home?.usedBytes ?? Infinity).toBeLessThan(0.2 * (freed.home?.totalBytes ?? 0));
    expect(await server.run(shell, 'cat ~/note.txt')).toContain('kept-42');
    shell.close();
  });

  it("never shows one user's home to another: mount, /proc/mounts, df and ls /home show only their own", async () => {
    const aliceShell = await server.shell(alice);
    await server.run(aliceShell, 'echo secret > ~/only-alice');
    const shell = await server.shell(bob);
    const mounts = await server.run(
      shell,
      'cat /proc/self/mountinfo /proc/mounts; mount; df -P; cat /sys/block/loop*/loop/backing_file 2>/dev/null',
    );
    const homeLines = mounts.split('\n').filter((l) => /(^|\s)\/home(\/|\s|$)/.test(l));
    expect(homeLines.length).toBeGreaterThan(0);
    for (const line of homeLines) expect(line).toMatch(/\/home\/cloudshell-user/);
    // No user's id or name (bob's own included), and no mount point path, anywhere.
    for (const text of [alice.id, bob.id, alice.username, bob.username, 'homes/mnt'])
      expect(mounts).not.toContain(text);
    // The home is the root of its own filesystem, from a loop device: no host path shows.
    expect(mounts).toMatch(/^\S+ \S+ \S+ \/ \/home\/cloudshell-user \S+.* - ext4 \/dev\/loop\d+ /m);
    expect((await server.run(shell, 'command ls -A /home')).trim()).toBe('cloudshell-user');
    const search = await server.run(shell, 'ls -A ~; find / -xdev -name only-alice 2>/dev/null | head -1');
    expect(search).not.toContain('only-alice');
    aliceShell.close();
  });

  it('restart closes the terminals with reason "restarted", removes the container and keeps the home', async () => {
    const shell = await server.shell(alice);
    const before = await server.app.environments.status({ ownerId: alice.id, region: regionA });
    const response = await server.request(alice, 'POST', `/api/environments/${regionA}/restart`, {});
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json<{ terminalsClosed: number }>().terminalsClosed).toBeGreaterThanOrEqual(1);
    const exit = await shell.waitForEvent('exit');
    expect(exit.reason).toBe('restarted');
    expect((await environment(alice)).status).toBe('missing');

    const again = await server.shell(alice);
    expect(await server.run(again, 'cat ~/note.txt')).toContain('kept-42');
    const after = await server.app.environments.status({ ownerId: alice.id, region: regionA });
    expect(after.id).not.toBe(before.id);
    const entries = await server.store.audit.list({ action: 'environment.restart' });
    expect(entries[0]).toMatchObject({ actorId: alice.id, target: `environment:${regionA}:${alice.id}` });
    again.close();
  });

  it('keeps the home across a server restart, also when the host lost its mounts (reboot)', async () => {
    const shell = await server.shell(alice);
    await server.run(shell, 'echo after-restart > ~/restart.txt; sync');
    await server.restart(async () => {
      // A host reboot: containers and mounts are gone before the server starts again.
      await server.app.environments.remove({ ownerId: alice.id, region: regionA });
      await server.app.environments.remove({ ownerId: alice.id, region: regionB });
      await server.app.environments.remove({ ownerId: bob.id, region: regionA });
      await server.volumes.unmount({ ownerId: alice.id, region: regionA });
      expect(await server.volumes.isMounted({ ownerId: alice.id, region: regionA })).toBe(false);
    });
    // Mounted again by the start itself, before anything asked for it.
    expect(await server.volumes.isMounted({ ownerId: alice.id, region: regionA })).toBe(true);
    const again = await server.shell(alice);
    expect(await server.run(again, 'cat ~/restart.txt ~/note.txt')).toMatch(/after-restart\n.*kept-42/s);
    again.close();
  });

  it('refuses to mount a home a second time while a container still holds it', async () => {
    const key = { ownerId: alice.id, region: regionA };
    await server.shell(alice);
    await server.volumes.unmount(key);
    const failure = await server.app.homes.ensure(key).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'COVE_ERR_HOME_BUSY', statusCode: 409 });
    expect(await server.volumes.isMounted(key)).toBe(false);
    await server.app.homeLifecycle.restart(key);
    const again = await server.shell(alice);
    expect(await server.run(again, 'cat ~/note.txt')).toContain('kept-42');
    again.close();
  });

  it('delete home wants {confirm: "delete"}, then closes terminals and gives a fresh, seeded home', async () => {
    const shell = await server.shell(alice);
    for (const body of [{}, { confirm: 'yes' }, { confirm: 'DELETE ' }]) {
      const refused = await server.request(alice, 'DELETE', `/api/environments/${regionA}/home`, body);
      expect(refused.statusCode).toBe(400);
      expect(refused.json()).toMatchObject({ code: 'COVE_ERR_HOME_CONFIRM_REQUIRED' });
      expect(refused.json<{ message: string }>().message).toMatch(/type the word delete/);
    }
    expect((await environment(alice)).home).not.toBeNull();

    const response = await server.request(alice, 'DELETE', `/api/environments/${regionA}/home`, {
      confirm: 'delete',
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({ deleted: true });
    expect((await shell.waitForEvent('exit')).reason).toBe('home-deleted');
    expect(await environment(alice)).toEqual({ status: 'missing', home: null });
    expect(await server.volumes.exists({ ownerId: alice.id, region: regionA })).toBe(false);

    const fresh = await server.shell(alice);
    const listing = await server.run(fresh, 'ls -A ~; echo ---; ls -A /etc/skel');
    const [home = '', skel = ''] = listing.split('---');
    const names = (text: string) => text.split(/\s+/).filter(Boolean).sort();
    expect(names(home)).toEqual(names(`${skel} .cove-seeded`));
    expect(names(home)).toContain('.bashrc');
    // Region B's home is a different home: untouched.
    expect((await environment(alice, regionB)).home).not.toBeNull();
    const entries = await server.store.audit.list({ action: 'home.delete' });
    expect(entries[0]).toMatchObject({ actorId: alice.id, target: `home:${regionA}:${alice.id}` });
    fresh.close();
  });

  it('the retention sweep (fake clock) deletes only homes past the period, skipping open terminals', async () => {
    const carol = await server.user('carol');
    const dave = await server.user('dave');
    const erin = await server.user('erin');
    const key = (u: HomeTestUser, region = regionA) => ({ ownerId: u.id, region });
    const bobShell = await server.shell(bob);
    await server.app.homes.ensure(key(carol));
    await server.app.homes.ensure(key(dave));
    server.clockOffsetMs = 100 * dayMs;
    await server.app.homes.ensure(key(erin));

    // Day 121 for carol, dave, bob; day 21 for erin.
    server.clockOffsetMs = 121 * dayMs;
    const deleted = await server.app.homeLifecycle.sweep();
    const gone = deleted.map((k) => `${k.region}:${k.ownerId}`);
    expect(gone).toContain(`${regionA}:${carol.id}`);
    expect(gone).toContain(`${regionA}:${dave.id}`);
    expect(gone).not.toContain(`${regionA}:${erin.id}`);
    expect(gone).not.toContain(`${regionA}:${bob.id}`);
    expect(await server.volumes.exists(key(carol))).toBe(false);
    expect(await server.volumes.exists(key(erin))).toBe(true);
    expect(await server.volumes.exists(key(bob))).toBe(true);
    const audit = await server.store.audit.list({ action: 'home.expire' });
    const forDave = audit.find((e) => e.target === `home:${regionA}:${dave.id}`);
    expect(forDave).toMatchObject({ actorId: null, actorName: 'system' });
    expect(forDave?.details).toMatchObject({ retentionDays: 120, region: regionA });
    expect(audit).toHaveLength(deleted.length);
    server.clockOffsetMs = 0;
    bobShell.close();
  });
});
