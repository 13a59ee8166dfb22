/**
 * A network link of a given speed for the transfer benchmark: a TCP proxy on loopback that passes
 * at most `bytesPerS` each way, shared by every connection through it, as one browser's access
 * link is. Put between the "browser" (the bench's requests) and S3, it shows what a user on a real
 * link sees, where S3 is not on the same two cores as everything else. Loopback only.
 */
import { createConnection, createServer, type Socket } from 'node:net';

export interface PacedLink {
  readonly port: number;
  close(): Promise<void>;
}

/** Hands out bytes at a fixed rate; a chunk waits until its bytes are due. */
class Pacer {
  private nextFreeMs = 0;

  constructor(private readonly bytesPerS: number) {}

  /** Milliseconds to wait before sending `bytes`. */
  delayFor(bytes: number): number {
    const now = performance.now();
    const start = Math.max(now, this.nextFreeMs);
    this.nextFreeMs = start + (bytes / this.bytesPerS) * 1000;
    return this.nextFreeMs - now;
  }
}

export async function startPacedLink(targetPort: number, bytesPerS: number): Promise<PacedLink> {
  const up = new Pacer(bytesPerS);
  const down = new Pacer(bytesPerS);
  const sockets = new Set<Socket>();
  const pipe = (from: Socket, to: Socket, pacer: Pacer) => {
    let pending = false;
    let ended = false;
    from.on('data', (chunk: Buffer) => {
      from.pause();
      pending = true;
      const send = () => {
        pending = false;
        if (to.destroyed) return;
        const more = to.write(chunk);
        // A FIN that came while this chunk waited goes after it.
        if (ended) to.end();
        else if (more) from.resume();
        else to.once('drain', () => from.resume());
      };
      // Timers are no finer than 1 ms: a chunk due sooner goes now, and the debt carries over.
      const delayMs = pacer.delayFor(chunk.length);
      if (delayMs < 1) send();
      else setTimeout(send, delayMs);
    });
    from.on('end', () => {
      ended = true;
      if (!pending) to.end();
    });
    from.on('error', () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    }
    pipe(client, upstream, up);
    pipe(upstream, client, down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('paced link: no port');
  return {
    port: address.port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
