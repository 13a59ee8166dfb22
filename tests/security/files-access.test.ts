/**
 * SECURITY-TESTS A06, file-transfer part: once an admin disables a user, the session they still
 * hold gets no new presigned URL (uploads, downloads, complete, listing: 401), and nothing is
 * staged, run in a container or started for it. The rig's fake driver answers the `cove-files`
 * helper from a script, so the "before" half shows the same requests working.
 */
import { createHash } from 'node:crypto';
import { createConnection } from 'node:net';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { SandboxDriver } from '../../sandbox/sandbox-driver.js';
import type { DownloadResponse, SingleUpload, UploadResponse } from '../../server/protocol/files.js';
import type {} from '../../server/files/file-service.js';
import { region, startSecurityRig, type RigUser, type SecurityRig } from './security-rig.js';

const secret = Buffer.from('the file in the home\n');
let rig: SecurityRig;
let admin: RigUser;
/** Every helper command the server ran, as `owner command`. */
const helperRuns: string[] = [];

/** The `cove-files` helper as the fake environment runs it: one file, `~/notes.txt`, 1 GB free. */
const scriptedExec: SandboxDriver['exec'] = async (key, cmd, options) => {
  const [, verb, path] = cmd;
  helperRuns.push(`${key.ownerId} ${verb ?? ''}`);
  const ok = (stdout: string, stderr = '') => ({
    exitCode: 0,
    stdout: Buffer.from(stdout),
    stderr: Buffer.from(stderr),
  });
  switch (verb) {
    case 'check-dir':
      return ok(`${JSON.stringify({ dir: path, freeBytes: 1e9 })}\n`);
    case 'stat':
      return ok(`${JSON.stringify({ path, name: 'notes.txt', type: 'file', size: secret.length })}\n`);
    case 'read': {
      // As the helper does: connect to the transfer socket (the host side of /run/cove), send the
      // token from stdin, then the bytes.
      const socketPath = cmd[cmd.indexOf('--socket') + 1] ?? '';
      const hostPath = join(rig.t.app.credentialDelivery.directoryOf(key), basename(socketPath));
      const token = Buffer.isBuffer(options?.stdin) ? options.stdin : Buffer.alloc(0);
      await new Promise<void>((resolve, reject) => {
        const connection = createConnection(hostPath);
        connection.once('error', reject);
        connection.once('close', () => resolve());
        connection.write(token);
        connection.end(secret);
      });
      const sha256 = createHash('sha256').update(secret).digest('hex');
      return ok(`${JSON.stringify({ size: secret.length, sha256 })}\n`);
    }
    default:
      return {
        exitCode: 2,
        stdout: Buffer.alloc(0),
        stderr: Buffer.from('{"error":"failed","message":"?"}\n'),
      };
  }
};

async function stagedKeys(): Promise<string[]> {
  const staging = rig.t.app.files.staging.get(region);
  if (!staging) throw new Error('no staging bucket for the region');
  const page = await staging.client.send(
    new ListObjectsV2Command({ Bucket: staging.bucket, Prefix: staging.prefix }),
  );
  return (page.Contents ?? []).map((o) => o.Key ?? '').sort();
}

const uploads = `/api/environments/${region}/uploads`;
const downloads = `/api/environments/${region}/downloads`;
const askUpload = (user: RigUser) =>
  rig.request(user, 'POST', uploads, { dir: '~', files: [{ name: 'in.txt', size: 4 }] });
const askDownload = (user: RigUser) => rig.request(user, 'POST', downloads, { path: '~/notes.txt' });

beforeAll(async () => {
  rig = await startSecurityRig();
  Object.assign(rig.driver, { exec: scriptedExec });
  await rig.t.app.files.checked;
  admin = await rig.user('admin', { admin: true });
});
afterAll(async () => {
  await rig?.close();
});

describe('A06 a disabled user gets no new presigned URLs', () => {
  it('A06 after an admin disables the user, their old session gets 401 for uploads and downloads, and nothing is staged', async () => {
    const alice = await rig.user('alice');
    const bob = await rig.user('bob');

    // Before: the same session gets both kinds of URL.
    const upload = await askUpload(alice);
    expect(upload.statusCode, upload.body).toBe(200);
    const ticket = upload.json<UploadResponse>().uploads[0] as SingleUpload;
    const download = await askDownload(alice);
    expect(download.statusCode, download.body).toBe(200);
    expect(Buffer.from(await (await fetch(download.json<DownloadResponse>().url)).arrayBuffer())).toEqual(
      secret,
    );
    expect(helperRuns.filter((r) => r.startsWith(alice.id))).toEqual([
      `${alice.id} check-dir`,
      `${alice.id} stat`,
      `${alice.id} read`,
    ]);

    const patch = await rig.request(admin, 'PATCH', `/api/admin/users/${alice.id}`, { disabled: true });
    expect(patch.statusCode, patch.body).toBe(200);
    const stagedBefore = await stagedKeys();
    const runsBefore = helperRuns.length;
    const pendingBefore = rig.t.app.files.transfer.pendingUploads();
    const ensuresBefore = rig.driver.calls.filter((c) => c === `ensure ${region}/${alice.id}`).length;

    // After: the cookie she still has is worth nothing here, whatever she asks for.
    for (const [what, response] of [
      ['upload', await askUpload(alice)],
      ['download', await askDownload(alice)],
      ['complete', await rig.request(alice, 'POST', `${uploads}/${ticket.id}/complete`, {})],
      ['listing', await rig.request(alice, 'GET', `/api/environments/${region}/files?dir=%7E`)],
    ] as const) {
      expect(response.statusCode, what).toBe(401);
      expect(response.json<{ code: string }>().code, what).toBe('COVE_ERR_AUTH_REQUIRED');
      expect(response.body, what).not.toMatch(/X-Amz-|https?:\/\//);
    }
    // Nothing new staged (what was there may be gone: a fetched download's copy is deleted at once).
    expect((await stagedKeys()).filter((key) => !stagedBefore.includes(key))).toEqual([]);
    expect(helperRuns.length).toBe(runsBefore);
    expect(rig.t.app.files.transfer.pendingUploads()).toBe(pendingBefore);
    expect(rig.driver.calls.filter((c) => c === `ensure ${region}/${alice.id}`).length).toBe(ensuresBefore);

    // Only she is cut off: Bob still gets URLs.
    expect((await askUpload(bob)).statusCode).toBe(200);
    await rig.expectHealthy();
  });
});
