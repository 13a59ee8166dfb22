/** One place that writes audit entries, so every area records who, what, when and from where. */
import type { FastifyRequest } from 'fastify';
import type { StoreRepositories } from './store/store.js';

export interface AuditEvent {
  readonly action: string;
  readonly target?: string | null;
  readonly details?: Record<string, unknown>;
  /** When the actor is not the signed-in principal (sign-in itself, system sweeps). */
  readonly actor?: { id: string | null; name: string | null };
}

export async function audit(
  store: Pick<StoreRepositories, 'audit'>,
  request: FastifyRequest | undefined,
  event: AuditEvent,
): Promise<void> {
  const actor = event.actor ?? {
    id: request?.principal?.user.id ?? null,
    name: request?.principal?.user.username ?? null,
  };
  await store.audit.append({
    actorId: actor.id,
    actorName: actor.name,
    action: event.action,
    target: event.target ?? null,
    details: event.details ?? {},
    ip: request?.ip ?? null,
  });
}
