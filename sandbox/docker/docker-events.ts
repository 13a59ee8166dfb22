/**
 * The engine's event stream turned into environment events: `die` and `oom` of managed
 * containers, resumed from the last event seen when the engine restarts.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import type Docker from 'dockerode';

import { keyFromLabels, MANAGED_LABEL_FILTER } from '../names.js';
import type { Disposable, EnvironmentEvent, SandboxLogger } from '../sandbox-driver.js';
import type { DockerEngine } from './http-docker-engine.js';

/** Pushes `died`/`oom` events to `listener` until disposed (SandboxDriver.onEnvironmentEvent). */
export function watchEnvironmentEvents(
  docker: DockerEngine,
  logger: SandboxLogger | undefined,
  listener: (event: EnvironmentEvent) => void,
): Disposable {
  const abort = new AbortController();
  const oomSeen = new Set<string>();
  const run = async (): Promise<void> => {
    let backoffMs = 500;
    let since = Math.floor(Date.now() / 1000);
    while (!abort.signal.aborted) {
      try {
        const events = await docker.getEvents({
          since,
          filters: { type: ['container'], event: ['die', 'oom'], label: [MANAGED_LABEL_FILTER] },
          abortSignal: abort.signal,
        } as Docker.GetEventsOptions);
        backoffMs = 500;
        await forEachJsonLine(events, abort.signal, (raw) => {
          const event = toEnvironmentEvent(raw, oomSeen);
          if (event) {
            since = Math.max(since, eventTimeS(raw));
            listener(event);
          }
        });
      } catch (err) {
        if (abort.signal.aborted) return;
        logger?.warn('docker event stream failed; retrying', { error: String(err) });
      }
      if (abort.signal.aborted) return;
      // The stream ended (engine restart): resume from the last event we saw, not from now.
      await sleep(backoffMs, undefined, { signal: abort.signal }).catch(() => undefined);
      backoffMs = Math.min(backoffMs * 2, 10_000);
    }
  };
  void run();
  return { dispose: () => abort.abort() };
}

export interface RawDockerEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  time?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

function eventTimeS(raw: RawDockerEvent): number {
  return typeof raw.time === 'number' ? raw.time : Math.floor(Date.now() / 1000);
}

export function toEnvironmentEvent(raw: RawDockerEvent, oomSeen: Set<string>): EnvironmentEvent | undefined {
  const attributes = raw.Actor?.Attributes ?? {};
  const key = keyFromLabels(attributes);
  const id = raw.Actor?.ID ?? raw.id;
  const action = raw.Action ?? raw.status;
  if (!key || !id) {
    return undefined;
  }
  if (action === 'oom') {
    oomSeen.add(id);
    return { ...key, kind: 'oom', id };
  }
  if (action === 'die') {
    // The engine sends `oom` just before `die` when the memory limit killed PID 1's tree.
    const stopReason = oomSeen.delete(id) ? 'oom' : `exited:${attributes.exitCode ?? '?'}`;
    return { ...key, kind: 'died', id, stopReason };
  }
  return undefined;
}

async function forEachJsonLine(
  stream: NodeJS.ReadableStream,
  signal: AbortSignal,
  onValue: (value: RawDockerEvent) => void,
): Promise<void> {
  let buffered = '';
  const onAbort = (): void => {
    (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of stream) {
      buffered += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) {
          try {
            onValue(JSON.parse(line) as RawDockerEvent);
          } catch (err) {
            if (err instanceof SyntaxError) continue;
            throw err;
          }
        }
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
