/**
 * A TCP proxy on loopback that a test puts between Cove (or a browser) and a service, to break the
 * network the way real outages do: a blackhole (packets vanish: the peer waits for its timeout),
 * a reset (TCP RST: the peer fails at once) and a cut (FIN mid-stream). There is no Toxiproxy here;
 * this covers its `timeout` and `reset_peer` toxics. Loopback only: it listens on 127.0.0.1 and
 * forwards to a 127.0.0.1 target. Always `close()` in afterAll.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface FaultProxy {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Open sockets stay open; bytes both ways are read and dropped; new connections are accepted and held silent. */
  blackhole(): void;
  /** Destroys every open connection with a TCP RST, and resets new ones until `restore()`. */
  reset(): void;
  /** Forwards normally again for new connections (connections held during blackhole/reset are destroyed). */
  restore(): void;
  /** Ends every open connection now (FIN); new ones are forwarded. */
  cutAll(): void;
  /** Date.now() of every accepted connection. */
  readonly acceptedAt: readonly number[];
  /** Stops listening and destroys everything. */
  close(): Promise<void>;
}

type Mode = 'forward' | 'blackhole' | 'reset';

/** One accepted connection; `upstream` is absent for connections accepted while not forwarding. */
interface Link {
  readonly client: Socket;
  upstream: Socket | undefined;
  /** forward: bytes flow; drop: bytes are read and discarded (held); ended: FIN sent, rest discarded. */
  state: 'forward' | 'drop' | 'ended';
}

const loopbackHost = '127.0.0.1';

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  if (target.host !== loopbackHost && target.host !== 'localhost') {
    throw new Error(`the fault proxy only forwards to loopback, not ${target.host}`);
  }
  let mode: Mode = 'forward';
  const links = new Set<Link>();
  const acceptedAt: number[] = [];

  // Both sockets of a link keep reading in every state (a blackhole still swallows bytes, so the
  // sender never sees back-pressure it would not see on a real lost route).
  const relay = (from: Socket, link: Link, to: () => Socket | undefined): void => {
    from.on('data', (chunk: Buffer) => {
      const sink = to();
      if (link.state !== 'forward' || !sink || sink.destroyed) return;
      if (!sink.write(chunk)) {
        from.pause();
        sink.once('drain', () => from.resume());
      }
    });
    from.on('end', () => {
      const sink = to();
      if (link.state === 'forward' && sink && !sink.destroyed) sink.end();
    });
  };

  const drop = (link: Link): void => {
    links.delete(link);
    link.client.destroy();
    link.upstream?.destroy();
  };

  const rst = (link: Link): void => {
    links.delete(link);
    link.client.resetAndDestroy();
    link.upstream?.resetAndDestroy();
  };

  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    acceptedAt.push(Date.now());
    const link: Link = { client, upstream: undefined, state: mode === 'forward' ? 'forward' : 'drop' };
    links.add(link);
    client.on('error', () => undefined);
    client.on('close', () => drop(link));
    if (mode === 'reset') {
      rst(link);
      return;
    }
    relay(client, link, () => link.upstream);
    if (link.state === 'drop') return;

    // Bytes the client sends before the upstream connects wait in the upstream's write buffer.
    const upstream = createConnection({ host: loopbackHost, port: target.port, allowHalfOpen: true });
    link.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.on('close', () => {
      // A blackholed link keeps its client silent even when the service behind it goes away.
      if (link.state !== 'drop') drop(link);
    });
    relay(upstream, link, () => link.client);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, loopbackHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the fault proxy has no TCP port');
  const port = address.port;

  return {
    port,
    url: `http://${loopbackHost}:${port}`,
    acceptedAt,
    blackhole() {
      mode = 'blackhole';
      for (const link of links) {
        if (link.state !== 'forward') continue;
        link.state = 'drop';
        // A reader paused for back-pressure would stop swallowing bytes.
        link.client.resume();
        link.upstream?.resume();
      }
    },
    reset() {
      mode = 'reset';
      for (const link of [...links]) rst(link);
    },
    restore() {
      mode = 'forward';
      for (const link of [...links]) if (link.state === 'drop') drop(link);
    },
    cutAll() {
      mode = 'forward';
      for (const link of [...links]) {
        link.state = 'ended';
        link.client.end();
        link.upstream?.end();
        link.client.resume();
        link.upstream?.resume();
      }
    },
    async close() {
      mode = 'reset';
      for (const link of [...links]) drop(link);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
