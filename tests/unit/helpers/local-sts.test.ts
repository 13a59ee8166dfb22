/**
 * The local STS checks AssumeRole's SigV4 signature like STS does, so a broker that signed wrongly
 * (or with the wrong key) fails against it as it would against AWS; tests that assume roles through
 * it prove the signing too.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_STS_CALLER, startLocalSts, type LocalSts } from '../../helpers/local-sts.js';

let sts: LocalSts;

beforeAll(async () => {
  sts = await startLocalSts();
});

afterAll(async () => {
  await sts?.close();
});

const assume = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
  new STSClient({ region: 'us-east-1', endpoint: sts.endpoint, credentials, maxAttempts: 1 })
    .send(
      new AssumeRoleCommand({
        RoleArn: 'arn:aws:iam::111122223333:role/Probe',
        RoleSessionName: 'signing-check',
        DurationSeconds: 900,
      }),
    )
    .then(
      (answer) => `issued ${answer.Credentials?.AccessKeyId?.slice(0, 4)}`,
      (e: { name: string; $metadata?: { httpStatusCode?: number } }) =>
        `${e.$metadata?.httpStatusCode} ${e.name}`,
    );

describe('the local STS verifies AssumeRole signatures', () => {
  it("issues credentials for a request signed with the server's key", async () => {
    expect(await assume(LOCAL_STS_CALLER)).toBe('issued ASIA');
  });

  it('refuses a wrong secret and an unknown key, and no role logic runs for them', async () => {
    const before = sts.assumeRoleRequests().length;
    const wrongSecret = { ...LOCAL_STS_CALLER, secretAccessKey: `${LOCAL_STS_CALLER.secretAccessKey}x` };
    expect(await assume(wrongSecret)).toBe('403 SignatureDoesNotMatch');
    expect(await assume({ ...LOCAL_STS_CALLER, accessKeyId: 'AKIAUNKNOWNUNKNOWN00' })).toBe(
      '403 InvalidClientTokenId',
    );
    expect(sts.assumeRoleRequests().length).toBe(before);
  });
});
