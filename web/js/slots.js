// @ts-check
// The live model of every slot, fed by the /events stream (and the first REST listing).
// Views subscribe to 'change' events; 'confirming' fires when a slot starts waiting for the user.

import { EventMsg, State, Status } from './protocol.js';

export class SlotStore extends EventTarget {
  constructor() {
    super();
    /** @type {Map<string, import('./protocol.js').SlotInfo>} SlotInfo by id, in the daemon's order */
    this.slots = new Map();
  }

  get(id) {
    return this.slots.get(id);
  }

  list() {
    return [...this.slots.values()];
  }

  /** Slots waiting for a confirmation. */
  needingYou() {
    return this.list().filter((s) => s.state === State.CONFIRMING);
  }

  /** What every slot has cost so far, in US dollars (slots without figures count nothing). */
  totalCost() {
    return this.list().reduce((sum, s) => sum + (s.usage?.costUsd || 0), 0);
  }

  /** A full snapshot: the first frame of every /events connection, e.g. after a daemon restart. */
  replaceAll(slots) {
    const before = this.slots;
    this.slots = new Map(slots.map((s) => [s.id, normalise(s)]));
    for (const id of before.keys()) if (!this.slots.has(id)) this.emit('removed', id);
    for (const slot of this.slots.values()) {
      const old = before.get(slot.id);
      // A process we did not see start (the daemon restarted, or we were away): views reattach.
      if (slot.status === Status.RUNNING && (!old || old.status === Status.EXITED || old.pid !== slot.pid)) {
        this.emit('started', slot.id);
      }
      // On the very first snapshot the page itself shows what waits; no notification for that.
      if (slot.state === State.CONFIRMING && old && old.state !== State.CONFIRMING) this.emit('confirming', slot.id);
    }
    this.emit('change', null);
  }

  /** Applies one `/events` frame. */
  apply(msg) {
    switch (msg.type) {
      case EventMsg.SLOTS:
        this.replaceAll(msg.slots || []);
        return;
      case EventMsg.SLOT_CREATED:
        this.slots.set(msg.slot.id, normalise(msg.slot));
        this.emit('change', msg.slot.id);
        return;
      case EventMsg.SLOT_STATE: {
        const slot = this.slots.get(msg.slotId);
        if (!slot) return;
        const wasConfirming = slot.state === State.CONFIRMING;
        // The same state again brings news in its detail (another dialog, tool or a drift).
        if (slot.state !== msg.state) slot.stateSince = Date.now();
        slot.state = msg.state;
        slot.stateDetail = msg.detail || {};
        if (msg.state === State.CONFIRMING && !wasConfirming) this.emit('confirming', msg.slotId);
        this.emit('change', msg.slotId);
        return;
      }
      case EventMsg.SLOT_STARTED: {
        const slot = this.slots.get(msg.slotId);
        if (!slot) return;
        slot.status = Status.RUNNING;
        slot.pid = msg.pid ?? null;
        slot.exitCode = null;
        slot.exitSignal = null;
        slot.startedAt = Date.now();
        this.emit('started', msg.slotId);
        this.emit('change', msg.slotId);
        return;
      }
      case EventMsg.SLOT_EXITED: {
        const slot = this.slots.get(msg.slotId);
        if (!slot) return;
        slot.status = Status.EXITED;
        slot.exitCode = msg.code ?? null;
        slot.exitSignal = msg.signal ?? null;
        this.emit('change', msg.slotId);
        return;
      }
      case EventMsg.SLOT_UPDATED: {
        // Facts other than the state changed (a worktree's diff stat): take the new info.
        const old = this.slots.get(msg.slot.id);
        if (!old) return;
        this.slots.set(msg.slot.id, { ...normalise(msg.slot), stateSince: old.stateSince });
        this.emit('change', msg.slot.id);
        return;
      }
      case EventMsg.USAGE: {
        // Cost and context figures from Claude Code's status line (at most one a second).
        const slot = this.slots.get(msg.slotId);
        if (!slot) return;
        slot.usage = msg.usage || null;
        this.emit('change', msg.slotId);
        return;
      }
      case EventMsg.SLOT_REMOVED:
        if (this.slots.delete(msg.slotId)) {
          this.emit('removed', msg.slotId);
          this.emit('change', msg.slotId);
        }
        return;
      default:
        // Unknown frames are ignored: a newer daemon may send more.
    }
  }

  emit(type, slotId) {
    this.dispatchEvent(new CustomEvent(type, { detail: slotId }));
  }
}

function normalise(slot) {
  return {
    ...slot,
    args: slot.args || [],
    stateDetail: slot.stateDetail || {},
    stateSince: slot.stateSince || Date.now(),
  };
}
