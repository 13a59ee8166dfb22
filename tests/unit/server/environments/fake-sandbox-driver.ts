/**
 * An in-memory SandboxDriver for unit tests: environments are records, a shell is a duplex that
 * echoes its input (like a TTY in cooked mode) and lets the test write output or end it. It is held
 * to the SandboxDriver contract (fake-sandbox-driver.test.ts runs the shared contract suite on it):
 * drivers made on one FakeSandboxBackend see the same environments, as two servers on one engine
 * do; spec hashes, stop reasons and the not-running code behave as the Docker driver's.
 */
import { Duplex } from 'node:stream';
import { specHash } from '../../../../sandbox/docker/container-spec.js';
import { SandboxError } from '../../../../sandbox/sandbox-error.js';
import type {
  Disposable,
  EnvironmentEvent,
  EnvironmentKey,
  EnvironmentSpec,
  EnvironmentStatus,
  ExecResult,
  SandboxDriver,
  Shell,
  ShellOptions,
} from '../../../../sandbox/sandbox-driver.js';

export class FakeTty extends Duplex {
  readonly inputs: Buffer[] = [];
  echo = true;
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.inputs.push(chunk);
    if (this.echo) this.push(chunk);
    callback();
  }
  get input(): string {
    return Buffer.concat(this.inputs).toString('utf8');
  }
}

export class FakeShell implements Shell {
  readonly stream = new FakeTty();
  readonly resizes: { cols: number; rows: number }[] = [];
  killed = false;
  private finish: (code: number | null) => void = () => {};
  readonly exited = new Promise<number | null>((resolve) => {
    this.finish = resolve;
  });
  private lose: () => void = () => {};
  /** Held shells only (options.holder), like the real driver. */
  readonly detached: Promise<void> | undefined;
  /** Where the holder says this stream's output starts (see `Shell.outputStart`). */
  start: number | undefined;
  readonly outputStart = (): number | undefined => this.start;

  constructor(
    readonly key: EnvironmentKey,
    readonly options: ShellOptions,
  ) {
    this.detached = options.holder ? new Promise<void>((resolve) => (this.lose = resolve)) : undefined;
  }

  /** Simulates a dropped backend stream while the held shell lives on. */
  dropStream(): void {
    this.stream.push(null);
    this.lose();
  }

  async resize(cols: number, rows: number): Promise<void> {
    this.resizes.push({ cols, rows });
  }

  async kill(): Promise<void> {
    this.killed = true;
    this.exit(null);
  }

  exit(code: number | null): void {
    this.stream.push(null);
    this.finish(code);
  }
}

const id = (key: EnvironmentKey): string => `${key.region}/${key.ownerId}`;

const notRunning = (key: EnvironmentKey): SandboxError =>
  new SandboxError('COVE_ERR_SANDBOX_NOT_RUNNING', `environment ${id(key)} is not running`);

/** What the fake "engine" holds: shared by every driver made on it (a restarted server's too). */
export class FakeSandboxBackend {
  readonly environments = new Map<string, EnvironmentStatus>();
  /** Held shells alive per environment. */
  readonly held = new Map<string, Set<string>>();
  private readonly generations = new Map<string, number>();

  /** A container id for a new container of `key`: the first keeps the plain id tests know. */
  nextId(key: EnvironmentKey): string {
    const generation = (this.generations.get(id(key)) ?? 0) + 1;
    this.generations.set(id(key), generation);
    return generation === 1 ? `c-${id(key)}` : `c-${id(key)}-${generation}`;
  }
}

export class FakeSandboxDriver implements SandboxDriver {
  readonly environments: Map<string, EnvironmentStatus>;
  readonly specs: EnvironmentSpec[] = [];
  readonly shells: FakeShell[] = [];
  readonly calls: string[] = [];
  /** Held shells alive per environment (names). */
  readonly held: Map<string, Set<string>>;

  constructor(readonly backend: FakeSandboxBackend = new FakeSandboxBackend()) {
    this.environments = backend.environments;
    this.held = backend.held;
  }
  /** Delay of ensure, to see phases and races. */
  ensureDelayMs = 0;
  failEnsure: Error | undefined;
  private readonly listeners = new Set<(event: EnvironmentEvent) => void>();
  private readonly shellWaiters: ((shell: FakeShell) => void)[] = [];

  async ensure(spec: EnvironmentSpec): Promise<EnvironmentStatus> {
    this.calls.push(`ensure ${id(spec)}`);
    this.specs.push(spec);
    if (this.ensureDelayMs) await new Promise((r) => setTimeout(r, this.ensureDelayMs));
    if (this.failEnsure) throw this.failEnsure;
    const existing = this.environments.get(id(spec));
    // Like Docker: a running environment is left as it is, even with another spec; a stopped one
    // starts again as it was, or is made anew when its spec changed.
    if (existing?.state === 'running') return existing;
    const hash = specHash(spec);
    const same = existing !== undefined && existing.specHash === hash;
    const containerId = same && existing.id ? existing.id : this.backend.nextId(spec);
    const status: EnvironmentStatus = {
      ownerId: spec.ownerId,
      region: spec.region,
      state: 'running',
      id: containerId,
      specHash: hash,
      startedAt: new Date(),
    };
    this.environments.set(id(spec), status);
    return status;
  }

  async status(key: EnvironmentKey): Promise<EnvironmentStatus> {
    return this.environments.get(id(key)) ?? { ...key, state: 'missing' };
  }

  async stop(key: EnvironmentKey): Promise<void> {
    this.calls.push(`stop ${id(key)}`);
    const status = this.environments.get(id(key));
    if (status?.state === 'running')
      this.environments.set(id(key), { ...status, state: 'stopped', stopReason: 'exited:0' });
  }

  async remove(key: EnvironmentKey): Promise<void> {
    this.calls.push(`remove ${id(key)}`);
    this.environments.delete(id(key));
  }

  async list(): Promise<EnvironmentStatus[]> {
    return [...this.environments.values()];
  }

  async openShell(key: EnvironmentKey, options: ShellOptions): Promise<Shell> {
    this.calls.push(`openShell ${id(key)}`);
    if (this.environments.get(id(key))?.state !== 'running') throw notRunning(key);
    const shell = new FakeShell(key, options);
    if (options.holder) {
      const names = this.held.get(id(key)) ?? new Set<string>();
      this.held.set(id(key), names);
      const name = options.holder.name;
      if (!options.holder.create && !names.has(name)) shell.exit(null);
      else {
        names.add(name);
        void shell.exited.then(() => names.delete(name));
      }
    }
    this.shells.push(shell);
    for (const waiter of this.shellWaiters.splice(0)) waiter(shell);
    return shell;
  }

  /** Resolves with the next shell opened (or the latest, if one is already open and unclaimed). */
  nextShell(): Promise<FakeShell> {
    return new Promise((resolve) => this.shellWaiters.push(resolve));
  }

  async exec(key: EnvironmentKey): Promise<ExecResult> {
    if (this.environments.get(id(key))?.state !== 'running') throw notRunning(key);
    return { exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  }

  async listHeldShells(key: EnvironmentKey): Promise<string[]> {
    if (this.environments.get(id(key))?.state !== 'running') throw notRunning(key);
    return [...(this.held.get(id(key)) ?? [])];
  }

  reachable = true;

  async ping(): Promise<boolean> {
    return this.reachable;
  }

  onEnvironmentEvent(listener: (event: EnvironmentEvent) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Simulates the backend: the environment dies (e.g. OOM of PID 1). */
  die(key: EnvironmentKey, stopReason = 'oom'): void {
    const status = this.environments.get(id(key));
    if (status) this.environments.set(id(key), { ...status, state: 'stopped', stopReason });
    for (const listener of this.listeners) listener({ ...key, kind: 'died', id: `c-${id(key)}`, stopReason });
  }

  emit(event: EnvironmentEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
