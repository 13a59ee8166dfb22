import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../../../server/metrics/metrics.js';
import { bearerMatches } from '../../../../server/metrics/metrics-plugin.js';

import { parseSamples, sampleValue } from '../../../helpers/prometheus-text.js';

/** `name{a="1",b="2"}` written as in the exposition, looked up whatever the label order. */
function sample(text: string, series: string): number | undefined {
  const [, name = '', body = ''] = /^([^{]+)\{(.*)\}$/.exec(series) ?? [];
  const labels = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k, v]));
  return sampleValue(text, name, labels);
}

describe('Metrics', () => {
  it('labels every series with the instance and counts what the services report', async () => {
    const metrics = new Metrics({ instance: 'cove-a' });
    metrics.signInFailed('password');
    metrics.signInFailed('password');
    metrics.signInFailed('mfa');
    metrics.terminalOutput(100);
    metrics.terminalOutput(28);
    metrics.terminalInput(5);
    metrics.fileTransferred('upload', 1000);
    metrics.fileTransferred('upload', 24);
    metrics.fileTransferred('download', 7);
    metrics.stsCall(0.2);
    metrics.stsCall(1.5, 'Throttling');
    metrics.stsCall(0.1, 'weird code with spaces');
    metrics.storeCall('users.get', 0.002, false);
    metrics.storeCall('users.get', 0.003, true);
    metrics.httpRequest('POST', '/api/auth/login', 401);
    const text = await metrics.exposition();

    expect(sample(text, 'cove_signin_failures_total{reason="password",instance="cove-a"}')).toBe(2);
    expect(sample(text, 'cove_signin_failures_total{reason="mfa",instance="cove-a"}')).toBe(1);
    expect(sample(text, 'cove_terminal_output_bytes_total{instance="cove-a"}')).toBe(128);
    expect(sample(text, 'cove_terminal_input_bytes_total{instance="cove-a"}')).toBe(5);
    expect(sample(text, 'cove_file_transfers_total{direction="upload",instance="cove-a"}')).toBe(2);
    expect(sample(text, 'cove_file_transfer_bytes_total{direction="upload",instance="cove-a"}')).toBe(1024);
    expect(sample(text, 'cove_file_transfer_bytes_total{direction="download",instance="cove-a"}')).toBe(7);
    expect(sample(text, 'cove_sts_calls_total{outcome="ok",instance="cove-a"}')).toBe(1);
    expect(sample(text, 'cove_sts_calls_total{outcome="error",instance="cove-a"}')).toBe(2);
    expect(sample(text, 'cove_sts_errors_total{code="Throttling",instance="cove-a"}')).toBe(1);
    expect(sample(text, 'cove_sts_errors_total{code="other",instance="cove-a"}')).toBe(1);
    expect(sample(text, 'cove_sts_call_duration_seconds_count{instance="cove-a"}')).toBe(3);
    expect(sample(text, 'cove_sts_call_duration_seconds_bucket{le="1",instance="cove-a"}')).toBe(2);
    expect(
      sample(text, 'cove_store_operation_duration_seconds_count{operation="users.get",instance="cove-a"}'),
    ).toBe(2);
    expect(sample(text, 'cove_store_operation_errors_total{operation="users.get",instance="cove-a"}')).toBe(
      1,
    );
    expect(
      sample(
        text,
        'cove_http_requests_total{method="POST",route="/api/auth/login",status_class="4xx",instance="cove-a"}',
      ),
    ).toBe(1);
    // Every sample line carries the instance.
    const samples = parseSamples(text);
    expect(samples.length).toBeGreaterThan(20);
    for (const s of samples) expect(s.labels.instance, s.name).toBe('cove-a');
  });

  it('sums gauge sources per region at scrape time', async () => {
    const metrics = new Metrics({ instance: 'cove-b' });
    let open = new Map([['us-east-1', 2]]);
    metrics.countTerminals(() => open);
    metrics.countEnvironments(() => new Map([['eu-west-1', 1]]));
    metrics.countEnvironments(() => new Map([['eu-west-1', 2]]));
    let text = await metrics.exposition();
    expect(sample(text, 'cove_terminals_open{region="us-east-1",instance="cove-b"}')).toBe(2);
    expect(sample(text, 'cove_environments_running{region="eu-west-1",instance="cove-b"}')).toBe(3);
    // A region whose last terminal closed disappears instead of keeping a stale value.
    open = new Map([['eu-west-1', 1]]);
    text = await metrics.exposition();
    expect(sample(text, 'cove_terminals_open{region="us-east-1",instance="cove-b"}')).toBeUndefined();
    expect(sample(text, 'cove_terminals_open{region="eu-west-1",instance="cove-b"}')).toBe(1);
  });

  it('keeps two apps in one process apart', async () => {
    const a = new Metrics({ instance: 'a' });
    const b = new Metrics({ instance: 'b' });
    a.signInFailed('throttled');
    expect(await b.exposition()).not.toContain('cove_signin_failures_total{reason="throttled"');
    expect(await a.exposition()).toContain('cove_signin_failures_total{reason="throttled",instance="a"} 1');
  });
});

describe('bearerMatches', () => {
  const token = 'k'.repeat(40);
  const digest = createHash('sha256').update(token).digest();

  it('accepts exactly "Bearer <token>", the scheme in any case', () => {
    expect(bearerMatches(`Bearer ${token}`, digest)).toBe(true);
    expect(bearerMatches(`bearer ${token}`, digest)).toBe(true);
  });

  it('refuses a missing, empty, partial, longer or differently sent token', () => {
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `Bearer ${token.slice(1)}`,
      `Bearer ${token}x`,
      `Basic ${Buffer.from(`metrics:${token}`).toString('base64')}`,
      token,
      `Bearer ${token} ${token}`,
    ])
      expect(bearerMatches(header, digest)).toBe(false);
  });
});
