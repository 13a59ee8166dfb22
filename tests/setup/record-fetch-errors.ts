/**
 * For the R02 sweep: error bodies (status >= 400) that a test's `fetch` got from a Cove server it
 * has no hooks in (the real Cove process of the fault tests). Only Cove's answers are recorded
 * (they carry its `frame-ancestors 'none'` CSP); S3's own error documents are S3's business.
 * The body is read from a clone, so the test reads the response as before.
 */
import { leakRecord } from '../helpers/leak-record.js';

const plainFetch = globalThis.fetch;

globalThis.fetch = async (input, init) => {
  const response = await plainFetch(input, init);
  const csp = response.headers.get('content-security-policy') ?? '';
  if (response.status >= 400 && csp.includes("frame-ancestors 'none'")) {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    response
      .clone()
      .text()
      .then((body) => leakRecord.errorBody('fetch', response.status, method, url.pathname, body))
      .catch(() => undefined);
  }
  return response;
};
