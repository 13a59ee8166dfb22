/** Admin API and the access portal. (Being written.) */
import type { FastifyInstance } from 'fastify';

export default async function directoryRoutes(_app: FastifyInstance): Promise<void> {}
