/**
 * The contract every environment backend implements (Docker now, Kubernetes next).
 *
 * An environment is keyed by (ownerId, region): one container (or pod) and one home. State lives
 * on the backend itself (labels), never only in the server's memory, so `list()` after a server
 * restart tells the truth and the server re-adopts what it finds.
 *
 * Semantics every implementation must keep (the shared contract suite in
 * tests/integration/sandbox/ checks them):
 * - `ensure` is get-or-create-and-start, idempotent, and safe under concurrent calls for the same
 *   key: two calls at once yield one environment. A running environment whose spec hash differs
 *   from the wanted one is left running (the caller decides when to recreate it); a *stopped* one
 *   holds nothing worth keeping (the home lives apart), so it is recreated with the wanted spec.
 * - `stop` and `remove` of something already stopped or missing succeed (like DockerSpawner
 *   treating 304/404/409 as done).
 * - `openShell` runs a process with a TTY as the environment user and hands back one raw duplex
 *   byte stream; nothing multiplexed, nothing decoded.
 * - Failures the caller should act on reject with a `SandboxError` (sandbox-error.ts) whose
 *   `code` says what happened (`COVE_ERR_SANDBOX_IMAGE_MISSING`, `..._HOME_MISSING`, ...).
 */
import type { Duplex } from 'node:stream';

export interface EnvironmentKey {
  /** Immutable user id (never the display name). */
  readonly ownerId: string;
  /** Region id such as `eu-west-1`. */
  readonly region: string;
}

export interface EnvironmentLimits {
  readonly pidsLimit: number;
  readonly memoryBytes: number;
  /** CPU in thousandths of a CPU: 1000 is one CPU, 500 half of one. */
  readonly cpuMillis: number;
  /** Size cap of the environment's /tmp. */
  readonly tmpSizeBytes: number;
}

/**
 * A directory on the machine that runs the environments (the engine's host). Made with
 * `hostDirectory()`; a backend that cannot reach that machine's disk refuses it.
 */
export interface HostDirectory {
  readonly kind: 'host-directory';
  readonly path: string;
}

/** Where a user's home lives, as the home store hands it out; only the backend looks inside. */
export type HomeRef = HostDirectory;

/** Where the credentials socket lives; only the backend looks inside. */
export type CredentialsRef = HostDirectory;

/**
 * The environment's network, by policy name. `region`: the region's own network, no traffic
 * between environments, behind Cove's egress firewall (what users get). `none`: no network at
 * all. Absent: the backend's plain default network without Cove's firewall (tests, development).
 */
export type NetworkPolicy = 'region' | 'none';

/** What to run, never how: each backend turns it into its own objects (a container, a pod). */
export interface EnvironmentSpec extends EnvironmentKey {
  readonly image: string;
  readonly limits: EnvironmentLimits;
  /** Mounted at /home/cloudshell-user; it must already exist (and be mounted). None: a throwaway home. */
  readonly home?: HomeRef;
  /** Holds the credentials socket, mounted read-only at /run/cove. */
  readonly credentials?: CredentialsRef;
  /** Extra environment variables for PID 1 (never secrets: backends show them to operators). */
  readonly env?: Readonly<Record<string, string>>;
  readonly network?: NetworkPolicy;
  /** OCI runtime for the environment (e.g. `runsc` for gVisor); the backend's default when absent. */
  readonly runtime?: string;
  /**
   * Extra labels on the environment's backend objects, for operators' tools. Cove's own
   * (`cove.*`, names.ts) are set by the backend and cannot be given here.
   */
  readonly labels?: Readonly<Record<string, string>>;
}

export type EnvironmentState = 'running' | 'stopped' | 'missing';

export interface EnvironmentStatus extends EnvironmentKey {
  readonly state: EnvironmentState;
  /** Backend id (container id); absent when missing. */
  readonly id?: string;
  readonly specHash?: string;
  readonly startedAt?: Date;
  /** Why it stopped, when known: `oom`, `exited:<code>`. */
  readonly stopReason?: string;
}

export interface ShellOptions {
  readonly cmd: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cols: number;
  readonly rows: number;
  readonly workingDir?: string;
  /**
   * Run the shell under a session holder in the environment, so it outlives this stream, the
   * server and a backend restart; only `kill()` or the shell's own exit ends it. `name` is the
   * holder's name (`[A-Za-z0-9_-]{1,64}`); `create: false` only reattaches (other clients of the
   * held shell are detached) and never starts a new shell: `exited` then resolves with null at
   * once when there is none. `env` reaches a newly created shell only, never other held shells.
   * The holder numbers the shell's output bytes from 0 and keeps the newest of them: a reattach
   * (`create: false`) starts the stream at byte `from` (0 when absent), or at the oldest one kept
   * when `from` is gone; `Shell.outputStart` says where it started.
   */
  readonly holder?: { readonly name: string; readonly create: boolean; readonly from?: number };
}

export interface Shell {
  /** Raw TTY bytes both ways. Pausing it stops reading from the backend (flow control). */
  readonly stream: Duplex;
  resize(cols: number, rows: number): Promise<void>;
  /** Resolves with the exit code once the process has ended (null when unknown). */
  readonly exited: Promise<number | null>;
  /** Ends the process (not just the stream): a disconnected exec otherwise lives on. */
  kill(): Promise<void>;
  /**
   * Held shells only: resolves when this stream ended while the held shell lives on (the backend
   * restarted, another client took over); `exited` then stays pending. Reattach with `openShell`.
   */
  readonly detached?: Promise<void>;
  /**
   * Held shells only: the number of the first output byte this stream carries (see
   * `ShellOptions.holder`); known once output arrived, undefined before.
   */
  readonly outputStart?: () => number | undefined;
}

export interface ExecResult {
  readonly exitCode: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

export interface ExecOptions {
  /** `uid:gid`; the environment user (`1000:1000`) when absent. */
  readonly user?: string;
  readonly workingDir?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly stdin?: Buffer | NodeJS.ReadableStream;
  /**
   * Receives stdout as it arrives (then `ExecResult.stdout` is empty), for output too large to
   * hold in memory. Backpressure reaches the process: the exec is not read while this stream's
   * buffer is full. The caller ends it after the call resolves.
   */
  readonly stdout?: NodeJS.WritableStream;
  /** On expiry the process is killed and the call rejects with `COVE_ERR_SANDBOX_EXEC_TIMEOUT`. */
  readonly timeoutMs?: number;
}

/** Something the server should tell the user about, pushed by the backend. */
export interface EnvironmentEvent extends EnvironmentKey {
  /** `died`: the environment stopped; `oom`: a process in it was killed for lack of memory. */
  readonly kind: 'died' | 'oom';
  readonly id: string;
  /** For `died`: `oom`, `exited:<code>`. */
  readonly stopReason?: string;
}

export interface Disposable {
  dispose(): void;
}

/** Where a backend writes what an operator may want to read; the server hands in its logger. */
export interface SandboxLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A known escape the backend's own software (engine, container runtime) is not fixed for. */
export interface BackendFinding {
  /** `engine`, `containerd`, `runc`, ... */
  readonly component: string;
  /** The version the backend reports. */
  readonly reported: string;
  /** Advisory ids (`CVE-2024-21626`). */
  readonly ids: readonly string[];
  /** Plain words for the log, e.g. `runc 1.1.5 is older than 1.1.12 (CVE-2024-21626)`. */
  readonly message: string;
}

/** What a backend runs and which known escapes that leaves open. */
export interface BackendVersionCheck {
  /** Component versions as the backend reports them, for the log. */
  readonly versions: Readonly<Record<string, unknown>>;
  readonly findings: readonly BackendFinding[];
}

export interface SandboxDriver {
  ensure(spec: EnvironmentSpec): Promise<EnvironmentStatus>;
  status(key: EnvironmentKey): Promise<EnvironmentStatus>;
  stop(key: EnvironmentKey): Promise<void>;
  remove(key: EnvironmentKey): Promise<void>;
  /** Every environment this driver manages, read from the backend's labels. */
  list(): Promise<EnvironmentStatus[]>;
  openShell(key: EnvironmentKey, options: ShellOptions): Promise<Shell>;
  exec(key: EnvironmentKey, cmd: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Names of the held shells alive in a running environment (see `ShellOptions.holder`); rejects
   * with `COVE_ERR_SANDBOX_NOT_RUNNING` when it is not running. Names come from inside the
   * environment, where its user can make up any: treat them as claims to check, never as facts.
   */
  listHeldShells(key: EnvironmentKey): Promise<string[]>;
  /** Cheap reachability probe for /readyz. */
  ping(): Promise<boolean>;
  /**
   * Pushes `died`/`oom` events of managed environments until disposed; reconnects by itself
   * when the backend restarts (an event may then be delivered twice). Listener errors are the
   * caller's problem and are not caught.
   */
  onEnvironmentEvent(listener: (event: EnvironmentEvent) => void): Disposable;
  /**
   * Optional, for the version gate: reads the versions of the backend's own software now and
   * lists the known escapes they are not fixed for. `accept` holds `<component> <version>` pairs
   * an operator vouches for (`runc 1.1.5+ds1-1+deb12u9`); those are no finding. Rejects when the
   * backend cannot be asked. A backend with nothing to check leaves it out.
   */
  checkVersions?(accept: readonly string[]): Promise<BackendVersionCheck>;
}
