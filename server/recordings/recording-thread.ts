/**
 * Session recordings written on a thread of their own, so that encoding a flood of output as
 * asciicast (decode, JSON-escape, encode, write: several copies of every byte) never competes
 * with the terminal on the server's event loop. The event loop only copies each chunk into a
 * message (one memcpy) and notes the time it was seen.
 *
 * What is in flight to the thread is bounded (`maxQueueBytes`): a thread that falls behind makes
 * the recording drop events and be marked incomplete, as a slow disk does, never memory grow.
 * One thread serves every recording of the process; it is started on first use and does not
 * keep the process alive.
 *
 * The thread loads the built JavaScript module beside this one, so it runs only from the build
 * (`dist/`, what production and the bench run): from the TypeScript sources (vitest, tsx) Node 20
 * cannot load a thread's `.ts` module, and RecordingService writes on the event loop instead
 * (`canRunFrom`); tests/unit/server/recordings/recording-thread.test.ts runs the built thread.
 */
import { Worker } from 'node:worker_threads';
import type { AsciicastRecorderOptions, RecordingProblem, RecordingResult } from './asciicast-recorder.js';

/** What RecordingService needs of a recorder, on this thread or another. */
export interface SessionRecorder {
  output(chunk: Buffer): void;
  input(chunk: Buffer): void;
  resize(cols: number, rows: number): void;
  close(): Promise<RecordingResult>;
}

type OpenOptions = Omit<AsciicastRecorderOptions, 'onProblem' | 'clock'>;

export type ThreadRequest =
  | { readonly type: 'open'; readonly id: number; readonly options: OpenOptions }
  | { readonly type: 'o' | 'i'; readonly id: number; readonly t: number; readonly data: Uint8Array }
  | {
      readonly type: 'r';
      readonly id: number;
      readonly t: number;
      readonly cols: number;
      readonly rows: number;
    }
  | { readonly type: 'close'; readonly id: number };

export type ThreadReply =
  | { readonly type: 'done'; readonly id: number; readonly bytes: number }
  | {
      readonly type: 'problem';
      readonly id: number;
      readonly problem: RecordingProblem;
      readonly detail?: string;
    }
  | { readonly type: 'closed'; readonly id: number; readonly result: RecordingResult };

interface Open {
  inFlight: number;
  /** The thread died: nothing more will come back. */
  dead?: boolean;
  onProblem: (problem: RecordingProblem, error?: unknown) => void;
  closed?: (result: RecordingResult) => void;
}

/** Whether the thread can run from where this module was loaded (built JavaScript). */
export const canRunFrom = (moduleUrl: string): boolean => moduleUrl.endsWith('.js');

export class RecordingThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly open = new Map<number, Open>();

  /** Starts recording in the thread; `onProblem` is called on this thread, once per kind. */
  recorder(
    options: OpenOptions,
    onProblem: (problem: RecordingProblem, error?: unknown) => void,
  ): SessionRecorder {
    const worker = this.start();
    const id = this.nextId++;
    // Once per kind: an overflow seen here and by the thread's own queue is one problem.
    const told = new Set<RecordingProblem>();
    const tell = (problem: RecordingProblem, error?: unknown): void => {
      if (told.has(problem)) return;
      told.add(problem);
      onProblem(problem, error);
    };
    const state: Open = { inFlight: 0, onProblem: tell };
    this.open.set(id, state);
    worker.postMessage({ type: 'open', id, options } satisfies ThreadRequest);
    this.hold();
    const startedAt = performance.now();
    const seconds = () => (performance.now() - startedAt) / 1000;
    let overflowed = false;
    let closing: Promise<RecordingResult> | undefined;
    const send = (type: 'o' | 'i', chunk: Buffer): void => {
      if (overflowed || closing) return;
      if (state.inFlight + chunk.length > options.maxQueueBytes) {
        overflowed = true;
        tell('overflow');
        return;
      }
      state.inFlight += chunk.length;
      // A copy the thread owns: the chunk itself still goes to the pages.
      const data = new Uint8Array(chunk);
      worker.postMessage({ type, id, t: seconds(), data } satisfies ThreadRequest, [data.buffer]);
    };
    return {
      output: (chunk) => send('o', chunk),
      input: (chunk) => {
        if (options.input) send('i', chunk);
      },
      resize: (cols, rows) => {
        if (!overflowed && !closing)
          worker.postMessage({ type: 'r', id, t: seconds(), cols, rows } satisfies ThreadRequest);
      },
      close: () => {
        closing ??= new Promise<RecordingResult>((resolve) => {
          if (state.dead) {
            resolve({ bytes: 0, complete: false, problems: ['write-failed'] });
            return;
          }
          state.closed = (result) =>
            resolve(
              overflowed
                ? {
                    ...result,
                    complete: false,
                    problems: [...new Set([...result.problems, 'overflow' as const])],
                  }
                : result,
            );
          worker.postMessage({ type: 'close', id } satisfies ThreadRequest);
        });
        return closing;
      },
    };
  }

  /** Ends the thread (after every recording has closed). */
  async dispose(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./recording-thread-worker.js', import.meta.url));
    worker.on('message', (reply: ThreadReply) => this.onReply(reply));
    worker.on('error', (error) => {
      // Every open recording loses its writer: incomplete, and told once each.
      for (const [id, state] of this.open) {
        state.dead = true;
        state.onProblem('write-failed', error);
        state.closed?.({ bytes: 0, complete: false, problems: ['write-failed'] });
        this.open.delete(id);
      }
      this.worker = undefined;
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  /** Keeps the process alive while a recording is open (its end must reach the disk). */
  private hold(): void {
    if (this.open.size > 0) this.worker?.ref();
  }

  private onReply(reply: ThreadReply): void {
    const state = this.open.get(reply.id);
    if (!state) return;
    switch (reply.type) {
      case 'done':
        state.inFlight -= reply.bytes;
        break;
      case 'problem':
        state.onProblem(reply.problem, reply.detail);
        break;
      case 'closed':
        this.open.delete(reply.id);
        state.closed?.(reply.result);
        if (this.open.size === 0) this.worker?.unref();
        break;
    }
  }
}
