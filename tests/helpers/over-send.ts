/**
 * The 900 MB over-send of SECURITY-TESTS H04: a raw `http.request` PUT to a presigned URL that
 * streams far more than was signed without ever allocating it, and stops at S3's first answer.
 */
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { expect } from 'vitest';

export interface OverSend {
  readonly status: number | undefined;
  readonly error: string | undefined;
  /** Body bytes the client handed to its socket before the server answered or cut it. */
  readonly sentBytes: number;
}

/**
 * Streams up to `totalBytes` from one reused 64 KiB chunk (nothing large is allocated) to a
 * presigned URL and stops at the first answer or error. `headers` choose the framing: a
 * `content-length`, `transfer-encoding: chunked`, and/or `expect: 100-continue` (then the body
 * goes only after the server's 100).
 */
export function overSend(
  url: string,
  headers: Record<string, string>,
  totalBytes: number,
): Promise<OverSend> {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let sentBytes = 0;
  let stopped = false;
  const body = new Readable({
    read() {
      if (stopped || sentBytes >= totalBytes) return void this.push(null);
      sentBytes += chunk.length;
      this.push(chunk);
    },
  });
  return new Promise((resolve) => {
    let settled = false;
    const finish = (status: number | undefined, error: string | undefined): void => {
      stopped = true;
      if (settled) return;
      settled = true;
      body.destroy();
      request.destroy();
      resolve({ status, error, sentBytes });
    };
    const request = httpRequest(url, { method: 'PUT', headers }, (response) => {
      response.resume();
      finish(response.statusCode, undefined);
    });
    request.on('error', (error: NodeJS.ErrnoException) => finish(undefined, error.code ?? error.message));
    request.on('continue', () => body.pipe(request));
    if (!headers.expect) body.pipe(request);
  });
}

/**
 * The three over-sends of H04 to one URL signed for fewer bytes: with a Content-Length, chunked,
 * and with Expect: 100-continue. Each must be refused (403, or the connection cut) after fewer
 * than `fewBytes` went out; the polite one before any byte.
 */
export async function expectOverSendsRefused(
  url: string,
  totalBytes: number,
  fewBytes: number,
): Promise<void> {
  const framings: Record<string, string>[] = [
    { 'content-length': String(totalBytes) },
    { 'transfer-encoding': 'chunked' },
  ];
  for (const framing of framings) {
    const outcome = await overSend(url, framing, totalBytes);
    if (outcome.status !== undefined) expect(outcome.status).toBe(403);
    else expect(outcome.error).toMatch(/ECONNRESET|EPIPE/);
    expect(outcome.sentBytes).toBeLessThan(fewBytes);
  }
  const polite = await overSend(
    url,
    { 'content-length': String(totalBytes), expect: '100-continue' },
    totalBytes,
  );
  expect(polite.status).toBe(403);
  expect(polite.sentBytes).toBe(0);
}
