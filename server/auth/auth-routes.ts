/** Sign-in, MFA, sign-out, the current user. (Being written.) */
import type { FastifyInstance } from 'fastify';

export default async function authRoutes(_app: FastifyInstance): Promise<void> {}
