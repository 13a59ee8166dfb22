import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../../helpers/fault-proxy.js';

/** An echo service on loopback that records every byte it received. */
let echo: Server;
let echoPort = 0;
let received = '';
const echoSockets = new Set<Socket>();

/** A client connection with everything it read and how it ended. */
interface Probe {
  readonly socket: Socket;
  data: string;
  error: NodeJS.ErrnoException | undefined;
  ended: boolean;
  closed: Promise<void>;
}

function connect(port: number): Promise<Probe> {
  const socket = createConnection({ host: '127.0.0.1', port });
  const probe: Probe = { socket, data: '', error: undefined, ended: false, closed: Promise.resolve() };
  probe.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => (probe.data += chunk.toString()));
  socket.on('end', () => (probe.ended = true));
  socket.on('error', (error: NodeJS.ErrnoException) => (probe.error = error));
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(probe));
    socket.once('error', reject);
  });
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(10);
}

/** Long enough for bytes on loopback to arrive if anything forwarded them. */
const quietMs = 250;

beforeAll(async () => {
  echo = createServer((socket) => {
    echoSockets.add(socket);
    socket.on('close', () => echoSockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString();
      socket.write(chunk);
    });
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const address = echo.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  echoPort = address.port;
});

afterAll(async () => {
  for (const socket of echoSockets) socket.destroy();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

describe('fault proxy', () => {
  let proxy: FaultProxy;
  const probes: Probe[] = [];

  const open = async (): Promise<Probe> => {
    const probe = await connect(proxy.port);
    probes.push(probe);
    return probe;
  };

  beforeAll(async () => {
    proxy = await startFaultProxy({ host: '127.0.0.1', port: echoPort });
  });

  afterEach(() => {
    proxy.restore();
    for (const probe of probes.splice(0)) probe.socket.destroy();
    received = '';
  });

  afterAll(async () => {
    await proxy.close();
  });

  it('forwards bytes both ways and records every accepted connection', async () => {
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    const before = proxy.acceptedAt.length;
    const a = await open();
    const b = await open();
    a.socket.write('hello');
    b.socket.write('world');
    await until(() => a.data === 'hello' && b.data === 'world');
    expect(received).toContain('hello');
    expect(received).toContain('world');
    expect(proxy.acceptedAt.length).toBe(before + 2);
    expect(proxy.acceptedAt.at(-1)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('blackhole: open and new connections stay open while every byte is dropped both ways', async () => {
    const open1 = await open();
    open1.socket.write('before');
    await until(() => open1.data === 'before');
    received = '';

    proxy.blackhole();
    open1.socket.write('lost-on-open');
    const fresh = await open();
    fresh.socket.write('lost-on-new');
    await sleep(quietMs);

    expect(received).toBe('');
    expect(open1.data).toBe('before');
    expect(fresh.data).toBe('');
    expect([open1.error, open1.ended, open1.socket.destroyed]).toEqual([undefined, false, false]);
    expect([fresh.error, fresh.ended, fresh.socket.destroyed]).toEqual([undefined, false, false]);

    // The service still answers when the proxy drops its reply: nothing reaches the client.
    const [serviceSide] = [...echoSockets];
    serviceSide?.write('reply-dropped');
    await sleep(quietMs);
    expect(open1.data).toBe('before');

    proxy.restore();
    await Promise.all([open1.closed, fresh.closed]);
    const after = await open();
    after.socket.write('back');
    await until(() => after.data === 'back');
  });

  it('reset: open connections and new ones fail with ECONNRESET until restore', async () => {
    const victim = await open();
    victim.socket.write('x');
    await until(() => victim.data === 'x');

    proxy.reset();
    await victim.closed;
    expect(victim.error?.code).toBe('ECONNRESET');

    const refused = await connect(proxy.port).then(
      async (probe) => {
        probes.push(probe);
        await probe.closed;
        return probe.error?.code;
      },
      (error: NodeJS.ErrnoException) => error.code,
    );
    expect(refused).toBe('ECONNRESET');

    proxy.restore();
    const after = await open();
    after.socket.write('again');
    await until(() => after.data === 'again');
  });

  it('cutAll: open connections get a clean FIN, new ones are forwarded', async () => {
    const first = await open();
    first.socket.write('a');
    await until(() => first.data === 'a');

    proxy.cutAll();
    await until(() => first.ended);
    expect(first.error).toBeUndefined();

    const next = await open();
    next.socket.write('b');
    await until(() => next.data === 'b');
  });

  it('close: stops listening and destroys what is open', async () => {
    const local = await startFaultProxy({ host: '127.0.0.1', port: echoPort });
    const held = await connect(local.port);
    held.socket.write('z');
    await until(() => held.data === 'z');
    await local.close();
    await held.closed;
    const error = await connect(local.port).then(
      (probe) => {
        probe.socket.destroy();
        return undefined;
      },
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(error).toBe('ECONNREFUSED');
  });

  it('refuses a target off loopback', async () => {
    await expect(startFaultProxy({ host: '10.0.0.1', port: 80 })).rejects.toThrow(/loopback/);
  });
});
