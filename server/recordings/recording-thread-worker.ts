/**
 * The recording writer thread (see recording-thread.ts): turns each terminal's events into
 * asciicast lines and writes them, off the server's event loop, one AsciicastRecorder per open
 * recording. Every event is acknowledged with its size, so the server bounds what is in flight.
 */
import { parentPort } from 'node:worker_threads';
import { AsciicastRecorder } from './asciicast-recorder.js';
import type { ThreadRequest, ThreadReply } from './recording-thread.js';

const port = parentPort;
if (!port) throw new Error('recording-thread-worker runs as a worker thread only');
const recorders = new Map<number, AsciicastRecorder>();
const reply = (message: ThreadReply): void => port.postMessage(message);

port.on('message', (message: ThreadRequest) => {
  if (message.type === 'open') {
    const { id } = message;
    recorders.set(
      id,
      new AsciicastRecorder({
        ...message.options,
        onProblem: (problem, error) =>
          reply({ type: 'problem', id, problem, ...(error ? { detail: String(error) } : {}) }),
      }),
    );
    return;
  }
  const recorder = recorders.get(message.id);
  if (!recorder) return;
  switch (message.type) {
    case 'o':
    case 'i': {
      const chunk = Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength);
      if (message.type === 'o') recorder.output(chunk, message.t);
      else recorder.input(chunk, message.t);
      reply({ type: 'done', id: message.id, bytes: message.data.byteLength });
      break;
    }
    case 'r':
      recorder.resize(message.cols, message.rows, message.t);
      break;
    case 'close':
      recorders.delete(message.id);
      void recorder.close().then((result) => reply({ type: 'closed', id: message.id, result }));
      break;
  }
});
