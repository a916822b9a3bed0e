// @ts-check
// How each semantic state is shown: a badge class and words a person reads at a glance.

import { State } from './protocol.js';

export { isBusy } from './protocol.js';

/**
 * { cls, label, title } for a slot's state badge.
 * @param {string | null | undefined} state
 * @returns {{ cls: string, label: string, title: string }}
 */
export function badgeFor(state) {
  switch (state) {
    case State.IDLE: return { cls: 'idle', label: 'idle', title: 'waiting for a prompt' };
    case State.THINKING: return { cls: 'busy', label: 'busy · thinking', title: 'working' };
    case State.TOOL_RUNNING: return { cls: 'busy', label: 'busy · tool', title: 'running a tool' };
    case State.RESPONDING: return { cls: 'busy', label: 'busy · responding', title: 'writing output' };
    case State.CONFIRMING: return { cls: 'confirm', label: 'needs you', title: 'waiting for a confirmation' };
    case State.EXITED: return { cls: 'exited', label: 'exited', title: 'the program ended' };
    case State.ERROR: return { cls: 'error', label: 'error', title: 'the program reported an error' };
    case State.STARTING: return { cls: 'starting', label: 'starting', title: 'starting up' };
    default: return { cls: 'starting', label: String(state || 'unknown'), title: '' };
  }
}

/** "exited (code 1)", "exited (SIGTERM)" for an exited slot. */
export function exitText(slot) {
  if (slot.exitSignal) return `exited (${slot.exitSignal})`;
  if (slot.exitCode !== null && slot.exitCode !== undefined) return `exited (code ${slot.exitCode})`;
  return 'exited';
}
