/**
 * Typed fetch wrapper for Cove's JSON API. Every failure becomes an `ApiError` carrying the
 * server's code and user-facing message; a 401 on a page's data call sends the user to sign in.
 */
import type { ApiError as ApiErrorBody } from '../../../server/protocol/api.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    /** Seconds from a Retry-After header (429), when present. */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Codes that mean "finish signing in first" (set a password, set up MFA). */
const signInGateCodes = new Set([
  'COVE_ERR_AUTH_PASSWORD_CHANGE_REQUIRED',
  'COVE_ERR_AUTH_MFA_ENROLLMENT_REQUIRED',
]);

export interface RequestOptions {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Sent as JSON unless `text` is given. */
  readonly body?: unknown;
  /** A raw text body (e.g. CSV) with its content type. */
  readonly text?: { readonly contentType: string; readonly value: string };
  /**
   * When true (the default for page data), a 401 or an unfinished sign-in redirects to the
   * login page and the returned promise never settles. The login page itself passes false.
   */
  readonly redirectOnAuth?: boolean;
  /** Return the body as text instead of parsing JSON (CSV downloads). */
  readonly asText?: boolean;
}

/** The sign-in page URL that brings the user back here afterwards. */
export function loginUrl(): string {
  const here = `${location.pathname}${location.search}`;
  return `/login?next=${encodeURIComponent(here)}`;
}

export function redirectToLogin(): Promise<never> {
  location.assign(loginUrl());
  // The page is navigating away; nothing after this should run.
  return new Promise<never>(() => {});
}

function toApiError(status: number, body: unknown, retryAfter: string | null): ApiError {
  const retryAfterS = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
  if (typeof body === 'object' && body !== null && typeof (body as ApiErrorBody).message === 'string') {
    const { code, message, ...details } = body as ApiErrorBody;
    return new ApiError(status, String(code ?? 'COVE_ERR_UNKNOWN'), message, details, retryAfterS);
  }
  const message =
    status >= 500
      ? 'Cove could not answer right now. Try again in a moment.'
      : `The request failed (HTTP ${status}). Reload the page and try again.`;
  return new ApiError(status, 'COVE_ERR_HTTP', message, {}, retryAfterS);
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  let body: string | undefined;
  if (options.text) {
    headers['content-type'] = options.text.contentType;
    body = options.text.value;
  } else if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(path, {
      method: options.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      body,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'COVE_ERR_NETWORK', 'Cove cannot be reached. Check your connection and try again.');
  }
  const raw = await response.text();
  let parsed: unknown = undefined;
  if (raw && (response.headers.get('content-type') ?? '').includes('json')) {
    try {
      parsed = JSON.parse(raw) as unknown;
    } catch {
      parsed = undefined;
    }
  }
  if (!response.ok) {
    const error = toApiError(response.status, parsed, response.headers.get('retry-after'));
    const redirect = options.redirectOnAuth ?? true;
    if (redirect && (response.status === 401 || signInGateCodes.has(error.code))) return redirectToLogin();
    throw error;
  }
  if (options.asText) return raw as T;
  return (parsed ?? {}) as T;
}

export const getJson = <T>(path: string, options: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<T> =>
  request<T>(path, { ...options, method: 'GET' });

export const postJson = <T>(
  path: string,
  body: unknown = {},
  options: Omit<RequestOptions, 'method' | 'body'> = {},
) => request<T>(path, { ...options, method: 'POST', body });

export const putJson = <T>(
  path: string,
  body: unknown,
  options: Omit<RequestOptions, 'method' | 'body'> = {},
) => request<T>(path, { ...options, method: 'PUT', body });

export const patchJson = <T>(
  path: string,
  body: unknown,
  options: Omit<RequestOptions, 'method' | 'body'> = {},
) => request<T>(path, { ...options, method: 'PATCH', body });

export const deleteJson = <T>(path: string, options: Omit<RequestOptions, 'method' | 'body'> = {}) =>
  request<T>(path, { ...options, method: 'DELETE' });

/** Lists may come back as an array or as `{items}` (or another single array field). */
export function listOf<T>(value: unknown): T[] {
  if (Array.isArray(value)) return value as T[];
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    if (Array.isArray(record.items)) return record.items as T[];
    const arrays = Object.values(record).filter(Array.isArray);
    if (arrays.length === 1) return arrays[0] as T[];
  }
  return [];
}

/** The message to show for any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return 'Something went wrong in this page. Reload it and try again.';
}
