/**
 * The terminal lifecycle as an explicit state machine. Only forward moves, except that a running
 * terminal may be attached and detached any number of times:
 *
 *   starting ──► attached ⇄ detached ──► closed
 *       └──────────┴───────────┴────────────┘ (any state may close)
 *
 * A terminal stays `starting` until its shell is open, whether or not a socket is already waiting.
 */
export type TerminalState = 'starting' | 'attached' | 'detached' | 'closed';

const allowed: Readonly<Record<TerminalState, readonly TerminalState[]>> = {
  starting: ['attached', 'detached', 'closed'],
  attached: ['detached', 'closed'],
  detached: ['attached', 'closed'],
  closed: [],
};

export class IllegalTransitionError extends Error {
  constructor(from: TerminalState, to: TerminalState) {
    super(`terminal cannot move from ${from} to ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export class TerminalStateMachine {
  private current: TerminalState = 'starting';

  get state(): TerminalState {
    return this.current;
  }

  can(to: TerminalState): boolean {
    return allowed[this.current].includes(to);
  }

  /** Moves to `to`, or throws: an illegal move is a bug, never a user error. */
  moveTo(to: TerminalState): void {
    if (!this.can(to)) throw new IllegalTransitionError(this.current, to);
    this.current = to;
  }
}
