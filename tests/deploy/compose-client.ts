/**
 * The user's side of the compose smoke test, through the HTTP API and the terminal WebSocket only
 * (loopback): sign in, open a terminal, wait for the prompt, run one command line, print what it
 * printed and how long each step took as one JSON line, close the terminal.
 *
 *   COVE_SMOKE_PASSWORD=... npx tsx tests/deploy/compose-client.ts http://127.0.0.1:18080 'cat ~/f'
 *
 * Exits 1 with the reason on stderr when any step fails or takes longer than the timeout.
 */
import WebSocket from 'ws';

const [baseUrl, commandLine] = process.argv.slice(2);
const password = process.env.COVE_SMOKE_PASSWORD;
const region = process.env.COVE_SMOKE_REGION ?? 'us-east-1';
const timeoutMs = Number(process.env.COVE_SMOKE_CLIENT_TIMEOUT_MS ?? 120_000);

if (!baseUrl || commandLine === undefined || !password) {
  process.stderr.write('usage: COVE_SMOKE_PASSWORD=... compose-client.ts <base-url> <command line>\n');
  process.exit(2);
}
const origin = new URL(baseUrl).origin;

// The prompt ends in `$ ` once colours and window-title sequences are removed.
const prompt = /\$ $/;
// Written so that the echo of the typed line cannot match: the shell expands the arithmetic.
const begin = '__COVE_BEGIN_$((40+2))__';
const beginOut = '__COVE_BEGIN_42__';
const end = '__COVE_END_$((40+3))__';
const endOut = '__COVE_END_43__';

function plain(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, '')
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
      .replace(/\r/g, '')
  );
}

async function api(path: string, init: { method: string; body?: unknown; cookie?: string }) {
  const res = await fetch(`${origin}${path}`, {
    method: init.method,
    headers: {
      origin,
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(init.cookie ? { cookie: init.cookie } : {}),
    },
    body: init.body === undefined ? null : JSON.stringify(init.body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return { res, body: text ? (JSON.parse(text) as unknown) : undefined };
}

async function main(): Promise<void> {
  const started = performance.now();
  const since = () => Math.round(performance.now() - started);

  const login = await api('/api/auth/login', {
    method: 'POST',
    body: { username: 'admin', password },
  });
  const cookie = login.res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  if (!cookie) throw new Error('sign-in set no cookie');
  const loginMs = since();

  const created = await api(`/api/environments/${region}/terminals`, { method: 'POST', body: {}, cookie });
  const terminalId = (created.body as { terminalId?: string }).terminalId;
  if (!terminalId) throw new Error('no terminal id in the answer');
  const openedAt = since();

  const wsUrl = `${origin.replace(/^http/, 'ws')}/api/environments/${region}/terminals/${terminalId}/ws`;
  const socket = new WebSocket(wsUrl, { headers: { origin, cookie } });
  const phases: Record<string, number> = {};
  let received = 0;
  let output = '';
  let promptMs: number | undefined;

  const result = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`timed out after ${timeoutMs} ms; output so far:\n${plain(output).slice(-2000)}`)),
      timeoutMs,
    );
    const fail = (error: Error) => {
      clearTimeout(timer);
      reject(error);
    };
    socket.on('open', () => socket.send(JSON.stringify({ type: 'hello', v: 1, cols: 120, rows: 40 })));
    socket.on('error', fail);
    socket.on('close', (code, reason) => fail(new Error(`socket closed ${code} ${reason.toString()}`)));
    socket.on('message', (data, isBinary) => {
      if (!isBinary) {
        const event = JSON.parse(data.toString()) as { type: string; phase?: string; message?: string };
        if (event.type === 'status' && event.phase) phases[event.phase] ??= since();
        if (event.type === 'error' || event.type === 'exit')
          fail(new Error(`server event ${JSON.stringify(event)}`));
        return;
      }
      const bytes = data as Buffer;
      received += bytes.length;
      output += bytes.toString('utf8');
      socket.send(JSON.stringify({ type: 'ack', bytes: received }));
      const text = plain(output);
      if (promptMs === undefined && prompt.test(text)) {
        promptMs = since();
        socket.send(Buffer.from(`echo ${begin}; ${commandLine}; echo ${end}\r`));
      }
      const from = text.indexOf(beginOut);
      const to = text.indexOf(endOut);
      if (from >= 0 && to > from) {
        clearTimeout(timer);
        resolve(text.slice(from + beginOut.length, to).replace(/^\n/, ''));
      }
    });
  });
  const commandMs = since();
  socket.removeAllListeners('close');
  socket.close(1000);
  await api(`/api/environments/${region}/terminals/${terminalId}`, { method: 'DELETE', cookie }).catch(
    () => undefined,
  );

  process.stdout.write(
    `${JSON.stringify({
      output: result,
      ms: { login: loginMs, terminalCreated: openedAt, phases, prompt: promptMs, command: commandMs },
      promptAfterOpenMs: promptMs === undefined ? undefined : promptMs - loginMs,
    })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`compose-client: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
