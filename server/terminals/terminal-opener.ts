/**
 * Opening a terminal, with every check it needs in the order a user should hear about them: the
 * account × permission set is theirs, the region's engine answers, an environment may start there
 * (firewall, engine version, disk), the week's shell time is not used up, and the home exists (a
 * host out of space is refused here with 507, not as a terminal that fails after its page attached).
 * The route calls `open` and nothing else.
 */
import { CoveError, StoreError } from '../errors.js';
import type { EnvironmentKey } from '../../sandbox/index.js';
import type { EnvironmentOwner } from '../environments/environment-service.js';
import type { RecordMode } from '../store/store.js';
import type { Terminal } from './terminal.js';
import { terminalErrors, type TerminalBinding } from './terminal-service.js';

export interface TerminalOpenerDeps {
  readonly access: {
    accessFor(userId: string, accountId: string, permissionSetName: string): Promise<unknown>;
  };
  readonly environments: {
    reachable(region: string): Promise<boolean>;
    assertCanStart(key: EnvironmentKey): Promise<void>;
  };
  readonly usage: { assertTimeLeft(userId: string): Promise<void> };
  readonly homes: { prepare(key: EnvironmentKey): Promise<void> };
  readonly terminals: {
    create(owner: EnvironmentOwner, region: string, binding?: TerminalBinding, record?: RecordMode): Terminal;
  };
  /** Whether the new terminal is recorded; never when absent. */
  readonly recordings?: { policyFor(userId: string, permissionSet?: string): Promise<RecordMode> };
}

/** What the page asks for: a plain shell, or one for an account × permission set. */
export interface OpenRequest {
  readonly accountId?: string | undefined;
  readonly permissionSet?: string | undefined;
}

/** The same answer for an unknown and an unassigned account × permission set: no enumeration. */
export const noTerminalAccess = (): CoveError =>
  new CoveError(
    'COVE_ERR_TERMINAL_ACCESS',
    403,
    'You do not have that account and permission set. Pick one from the portal.',
  );

/**
 * The disk under the data directory is full (a home's metadata, the database): said as such with
 * 507, not as an internal error, so the user knows it is the server and open terminals carry on.
 */
const hostFull = (cause: unknown): CoveError =>
  new CoveError(
    'COVE_ERR_TERMINAL_HOST_FULL',
    507,
    'The server is out of disk space, so no new terminal can open. Your open terminals keep working; ask your administrator.',
    { cause },
  );

function isDiskFull(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof StoreError && current.kind === 'full') return true;
    const { code, cause } = current as { code?: unknown; cause?: unknown };
    if (code === 'ENOSPC') return true;
    current = cause;
  }
  return false;
}

export class TerminalOpener {
  constructor(private readonly deps: TerminalOpenerDeps) {}

  /** Whether the user may open a shell for this account × permission set now. */
  async hasAccess(userId: string, accountId: string, permissionSet: string): Promise<boolean> {
    return Boolean(await this.deps.access.accessFor(userId, accountId, permissionSet));
  }

  async open(owner: EnvironmentOwner, region: string, request: OpenRequest = {}): Promise<Terminal> {
    const { accountId, permissionSet } = request;
    if (accountId !== undefined || permissionSet !== undefined) {
      if (!accountId || !permissionSet) throw noTerminalAccess();
      if (!(await this.hasAccess(owner.id, accountId, permissionSet))) throw noTerminalAccess();
    }
    const key = { ownerId: owner.id, region };
    // An engine that is down (or restarting) is said at once, not after a shell fails to open.
    if (!(await this.deps.environments.reachable(region))) throw terminalErrors.backendUnavailable(region);
    // So is an environment that may not start (no firewall in enforce mode, engine too old).
    await this.deps.environments.assertCanStart(key);
    // Before anything starts: an exhausted weekly quota refuses with the time it resets.
    await this.deps.usage.assertTimeLeft(owner.id);
    await this.deps.homes.prepare(key).catch((error: unknown) => {
      throw isDiskFull(error) ? hostFull(error) : error;
    });
    // Read last, nearest the start: a policy that cannot be read refuses the terminal (503)
    // rather than open it unrecorded.
    const record = (await this.deps.recordings?.policyFor(owner.id, permissionSet)) ?? 'off';
    return this.deps.terminals.create(
      owner,
      region,
      {
        ...(accountId ? { accountId } : {}),
        ...(permissionSet ? { permissionSet } : {}),
      },
      record,
    );
  }
}
