/**
 * A class that starts together (`BENCH_ONLY=class`): 30 users open a terminal at the same moment,
 * time from each `POST …/terminals` to its prompt, in three situations, each run `runs` times with
 * fresh users:
 * - new homes, no containers (the first lesson);
 * - homes exist, containers stopped (the next lesson);
 * - environments running, a new tab each.
 * The server logs, per environment start, where the time went (status, guard, home, prepare,
 * engine); the bench prints the median of each step over the burst next to one start alone.
 */
import Docker from 'dockerode';

const region = 'us-east-1';
const docker = new Docker({ socketPath: '/var/run/docker.sock' });

export interface ClassBenchServer {
  readonly users: readonly { id: string; cookie: string }[];
  readonly child: { stdin: NodeJS.WritableStream | null; once(event: 'exit', cb: () => void): unknown };
}

export interface ClassBenchTerminal {
  readonly sink: { waitPrompt(timeoutMs?: number): Promise<number> };
  close(): void;
}

export interface ClassBenchDeps<S extends ClassBenchServer> {
  readonly runs: number;
  readonly classSize: number;
  startServer(
    userCount: number,
    extra: { logLevel: 'info'; maxConcurrentStarts?: number },
    onLog: (line: string) => boolean,
  ): Promise<S>;
  open(server: S, cookie: string): Promise<ClassBenchTerminal>;
}

export interface ClassBenchRow {
  readonly name: string;
  readonly value: string;
  readonly target: string;
}

const now = () => performance.now();
const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: readonly number[]) => {
  const s = sorted(xs);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const spread = (xs: readonly number[]) =>
  `${seconds(median(xs))} (${seconds(Math.min(...xs))}–${seconds(Math.max(...xs))}, n=${xs.length})`;

/**
 * One burst: every user opens a terminal at once; ms from the POST to each prompt. The terminals
 * stay open when `keep` is set (closing a user's last terminal stops the environment).
 */
async function burst<S extends ClassBenchServer>(
  deps: ClassBenchDeps<S>,
  server: S,
  users: readonly { cookie: string }[],
  keep = false,
): Promise<{ times: number[]; terminals: ClassBenchTerminal[] }> {
  const t0 = now();
  const opened = await Promise.all(
    users.map(async (user) => {
      const terminal = await deps.open(server, user.cookie);
      return { terminal, prompt: (await terminal.sink.waitPrompt(120_000)) - t0 };
    }),
  );
  const terminals = opened.map((t) => t.terminal);
  if (!keep) for (const terminal of terminals) terminal.close();
  return { times: opened.map((t) => t.prompt), terminals };
}

/** Stops the users' containers the way an idle stop does (the homes stay), all at once. */
async function stopAll(users: readonly { id: string }[]): Promise<void> {
  await Promise.all(
    users.map((u) =>
      docker
        .getContainer(`cove-env-${region}_${u.id}`)
        .stop({ t: 1 })
        .catch(() => undefined),
    ),
  );
}

interface StartLog {
  readonly msg?: string;
  readonly from?: string;
  readonly ms?: Record<string, number>;
}

export async function benchClassStart<S extends ClassBenchServer>(
  deps: ClassBenchDeps<S>,
): Promise<ClassBenchRow[]> {
  const starts: StartLog[] = [];
  // BENCH_MAX_STARTS overrides sandbox.maxConcurrentStarts (e.g. 256: no bound, to compare).
  const maxStarts = process.env.BENCH_MAX_STARTS ? Number(process.env.BENCH_MAX_STARTS) : undefined;
  const extra = { logLevel: 'info' as const, ...(maxStarts ? { maxConcurrentStarts: maxStarts } : {}) };
  const server = await deps.startServer(deps.runs * deps.classSize + 1, extra, (line) => {
    if (!line.startsWith('{')) return false;
    try {
      const entry = JSON.parse(line) as StartLog & { level?: number };
      if (entry.msg === 'environment started') starts.push(entry);
      // Info lines are for this bench only; warnings and errors still show.
      return (entry.level ?? 0) < 40;
    } catch {
      return false;
    }
  });
  const steps = (from: string, list: readonly StartLog[]) => {
    const names = [...new Set(list.flatMap((s) => Object.keys(s.ms ?? {})))];
    const picked = list.filter((s) => s.from === from);
    return names
      .map((name) => `${name} ${median(picked.map((s) => s.ms?.[name] ?? 0)).toFixed(0)}`)
      .join(', ');
  };
  try {
    const newHomes: number[][] = [];
    const stopped: number[][] = [];
    const running: number[][] = [];
    // One start alone first (the last user), for the breakdown without contention.
    const alone = server.users.at(-1) as { id: string; cookie: string };
    const t0 = now();
    const aloneTerminal = await deps.open(server, alone.cookie);
    const aloneMs = (await aloneTerminal.sink.waitPrompt(60_000)) - t0;
    aloneTerminal.close();
    const aloneSteps = steps('missing', starts.splice(0));
    let burstSteps = '';
    for (let r = 0; r < deps.runs; r++) {
      const users = server.users.slice(r * deps.classSize, (r + 1) * deps.classSize);
      newHomes.push((await burst(deps, server, users)).times);
      if (r === 0) burstSteps = steps('missing', starts);
      await stopAll(users);
      // Their first tabs stay open, so the environments run while each opens a second one.
      const first = await burst(deps, server, users, true);
      stopped.push(first.times);
      running.push((await burst(deps, server, users)).times);
      for (const terminal of first.terminals) terminal.close();
    }
    const row = (name: string, runsOf: number[][], target: string): ClassBenchRow => ({
      name: `class of ${deps.classSize}, ${name}`,
      value: `p50 ${spread(runsOf.map(median))}; max ${spread(runsOf.map((xs) => Math.max(...xs)))}`,
      target,
    });
    return [
      row('new homes, no containers', newHomes, 'every prompt ≤ 6 s'),
      row('homes exist, containers stopped', stopped, 'every prompt ≤ 4 s, p50 ≤ 2.5 s'),
      row('environments running, a new tab each', running, 'every prompt ≤ 1.5 s'),
      { name: 'one start alone → prompt', value: seconds(aloneMs), target: '≤ 1 s' },
      { name: 'one start alone, ms per step', value: aloneSteps, target: '' },
      {
        name: `one start in a class of ${deps.classSize}, median ms per step`,
        value: burstSteps,
        target: '',
      },
    ];
  } finally {
    server.child.stdin?.end();
    await new Promise((resolve) => {
      server.child.once('exit', () => resolve(undefined));
      setTimeout(resolve, 60_000).unref();
    });
  }
}
