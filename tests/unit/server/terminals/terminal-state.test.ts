import { describe, expect, it } from 'vitest';
import {
  IllegalTransitionError,
  TerminalStateMachine,
  type TerminalState,
} from '../../../../server/terminals/terminal-state.js';

const walk = (...states: TerminalState[]) => {
  const machine = new TerminalStateMachine();
  for (const state of states) machine.moveTo(state);
  return machine;
};

describe('TerminalStateMachine', () => {
  it('starts in starting and allows attach/detach back and forth', () => {
    expect(new TerminalStateMachine().state).toBe('starting');
    expect(walk('attached', 'detached', 'attached', 'detached', 'closed').state).toBe('closed');
    expect(walk('detached', 'attached').state).toBe('attached');
  });

  it('lets every live state close', () => {
    for (const path of [[], ['attached'], ['detached']] as TerminalState[][]) {
      expect(walk(...path, 'closed').state).toBe('closed');
    }
  });

  it('never moves backwards or out of closed', () => {
    expect(() => walk('attached', 'starting')).toThrow(IllegalTransitionError);
    expect(() => walk('detached', 'starting')).toThrow(IllegalTransitionError);
    for (const to of ['starting', 'attached', 'detached', 'closed'] as const) {
      expect(() => walk('closed', to)).toThrow(IllegalTransitionError);
    }
    expect(() => walk('attached', 'attached')).toThrow(IllegalTransitionError);
  });

  it('answers can() without moving', () => {
    const machine = walk('attached');
    expect(machine.can('starting')).toBe(false);
    expect(machine.can('detached')).toBe(true);
    expect(machine.state).toBe('attached');
  });
});
