/** Serves the built pages. (Being written.) */
import type { FastifyInstance } from 'fastify';

export default async function webPages(_app: FastifyInstance, _opts: { root?: string }): Promise<void> {}
