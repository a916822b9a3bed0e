// How each semantic state is shown: a badge class and words a person reads at a glance.

const BUSY = new Set(['thinking', 'tool_running', 'responding']);

export function isBusy(state) {
  return BUSY.has(state);
}

/** { cls, label, title } for a slot's state badge. */
export function badgeFor(state) {
  switch (state) {
    case 'idle': return { cls: 'idle', label: 'idle', title: 'waiting for a prompt' };
    case 'thinking': return { cls: 'busy', label: 'busy · thinking', title: 'working' };
    case 'tool_running': return { cls: 'busy', label: 'busy · tool', title: 'running a tool' };
    case 'responding': return { cls: 'busy', label: 'busy · responding', title: 'writing output' };
    case 'confirming': return { cls: 'confirm', label: 'needs you', title: 'waiting for a confirmation' };
    case 'exited': return { cls: 'exited', label: 'exited', title: 'the program ended' };
    case 'error': return { cls: 'error', label: 'error', title: 'the program reported an error' };
    case 'starting': return { cls: 'starting', label: 'starting', title: 'starting up' };
    default: return { cls: 'starting', label: String(state || 'unknown'), title: '' };
  }
}

/** "exited (code 1)", "exited (SIGTERM)" for an exited slot. */
export function exitText(slot) {
  if (slot.exitSignal) return `exited (${slot.exitSignal})`;
  if (slot.exitCode !== null && slot.exitCode !== undefined) return `exited (code ${slot.exitCode})`;
  return 'exited';
}
