/** Default permission sets and the admins group. (Being written.) */
import type { FastifyInstance } from 'fastify';

export async function seedDirectory(_app: FastifyInstance): Promise<void> {}
