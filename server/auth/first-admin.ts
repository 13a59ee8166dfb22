/** Creates `admin` at first start. (Being written.) */
import type { FastifyInstance } from 'fastify';

export interface FirstStart {
  readonly adminCreated: boolean;
  /** Set when no COVE_ADMIN_PASSWORD was given: print it once. */
  readonly oneTimeAdminPassword?: string;
}

export async function ensureFirstAdmin(_app: FastifyInstance, _password: string | undefined): Promise<FirstStart> {
  return { adminCreated: false };
}
