/**
 * A class that starts together, on the real engine: thirty users open a terminal at the same
 * moment. Starts run a bounded number at a time (sandbox.maxConcurrentStarts); everyone gets a
 * prompt and nobody an error, and a page that waits is told its place, which only goes down. An
 * admin's pre-start of a group starts its members' environments, so their first shell skips the
 * start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerEvent } from '../../../../server/protocol/terminal-wire.js';
import type { PrestartProgress } from '../../../../server/protocol/api.js';
import { DockerTerminalRig, rigOrigin, rigRegion } from './docker-terminal-rig.js';

const classSize = 30;
const maxConcurrentStarts = 3;

/** The places a page was told, in the order it heard them. */
const placesHeard = (events: readonly ServerEvent[]): number[] =>
  events.flatMap((e) => {
    if (e.type !== 'status' || e.phase !== 'queued') return [];
    const match = /(\d+) ahead of you|you are (next)/.exec(e.message ?? '');
    if (!match) throw new Error(`a queued status without a place: ${JSON.stringify(e)}`);
    return [match[2] ? 0 : Number(match[1])];
  });

describe('a class that starts together, on Docker', () => {
  let rig: DockerTerminalRig;
  const students: string[] = [];

  beforeAll(async () => {
    rig = await DockerTerminalRig.start('cove-class-start', {
      graceS: 30,
      hello: { cols: 80, rows: 24 },
      config: { sandbox: { maxConcurrentStarts } },
    });
    for (let i = 0; i < classSize; i++) {
      students.push(`student${i}`);
      await rig.signIn(`student${i}`);
    }
    await rig.signIn('teacher');
    for (const name of ['early0', 'early1', 'early2']) await rig.signIn(name);
  });

  afterAll(async () => {
    await rig?.close();
  });

  it(`${classSize} users open a terminal at once: all get a prompt, none an error, and each waiting page's place only goes down`, async () => {
    const ids = await Promise.all(students.map((who) => rig.create(who)));
    const clients = await Promise.all(students.map((who, i) => rig.connect(who, ids[i] as string)));
    // A deadline that only catches a hang: how fast is for `npm run bench` (BENCH_ONLY=class).
    await Promise.all(clients.map((client) => client.waitForPrompt(240_000)));

    const errors = clients.flatMap((c) => c.events.filter((e) => e.type === 'error' || e.type === 'exit'));
    expect(errors).toEqual([]);
    const places = clients.map((c) => placesHeard(c.events));
    for (const heard of places) {
      // Told again only when it changed, and only ever closer to the front.
      for (let i = 1; i < heard.length; i++) expect(heard[i]).toBeLessThan(heard[i - 1] as number);
      // Never told a place behind more starts than there are.
      for (const place of heard) expect(place).toBeLessThan(classSize);
    }
    // With three slots for thirty starts most pages waited, and the last ones far back.
    expect(places.filter((heard) => heard.length > 0).length).toBeGreaterThanOrEqual(classSize / 2);
    expect(Math.max(...places.flat())).toBeGreaterThanOrEqual(classSize / 3);
    // Whoever waited was told last that they were next (or a place just before their turn).
    for (const heard of places.filter((h) => h.length > 0))
      expect(heard.at(-1)).toBeLessThan(maxConcurrentStarts + 1);
    // One environment per user, all running.
    const states = await Promise.all(
      rig.userIds
        .slice(0, classSize)
        .map(
          async (ownerId) =>
            (await rig.app.environments.driver(rigRegion).status({ ownerId, region: rigRegion })).state,
        ),
    );
    expect(states).toEqual(Array(classSize).fill('running'));
    for (const client of clients) client.close();
  }, 300_000);

  it("an admin's pre-start starts every member's environment; their first shell skips the start", async () => {
    const members = rig.userIds.slice(-3);
    const group = await rig.app.directory.createGroup({ name: `early-${process.pid}` });
    await rig.app.directory.setGroupMembers(group.id, members);
    const admins =
      (await rig.app.store.groups.getByName('admins')) ??
      (await rig.app.directory.createGroup({ name: 'admins' }));
    await rig.app.store.groups.addMember(admins.id, rig.userIds[classSize] as string);

    const post = await rig.app.inject({
      method: 'POST',
      url: `/api/admin/groups/${group.id}/prestart`,
      headers: { origin: rigOrigin, cookie: rig.cookie('teacher'), 'content-type': 'application/json' },
      payload: JSON.stringify({ region: rigRegion }),
    });
    expect(post.statusCode, post.body).toBe(202);
    let progress = post.json() as PrestartProgress;
    expect(progress).toMatchObject({ total: 3, region: rigRegion, done: false });
    const deadline = Date.now() + 120_000;
    while (!progress.done && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      const poll = await rig.app.inject({
        method: 'GET',
        url: `/api/admin/prestarts/${progress.id}`,
        headers: { cookie: rig.cookie('teacher') },
      });
      expect(poll.statusCode, poll.body).toBe(200);
      progress = poll.json() as PrestartProgress;
    }
    expect(progress).toMatchObject({ total: 3, started: 3, skipped: 0, failed: 0, failures: [], done: true });
    for (const ownerId of members)
      expect(
        (await rig.app.environments.driver(rigRegion).status({ ownerId, region: rigRegion })).state,
      ).toBe('running');

    // The member's page hears no creating or starting: the environment was ready.
    const { client } = await rig.shell('early0');
    const phases = client.events.flatMap((e) => (e.type === 'status' ? [e.phase] : []));
    expect(phases).not.toContain('creating');
    expect(phases).not.toContain('starting');
    expect(phases).not.toContain('queued');
    client.close();
  }, 180_000);
});
