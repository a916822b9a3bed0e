// @ts-check
// The sidebar: one row per slot (id, command, state badge, time in state, actions), kept in
// place between updates so keyboard focus survives the live stream.

import { h, replaceChildren, formatDuration, formatCost, toast } from './dom.js';
import { badgeFor, exitText } from './states.js';
import { ErrorCode, State, Status, WorktreeRemoval } from './protocol.js';
import { ApiError } from './api.js';

export class SlotList {
  /**
   * @param {HTMLElement} listEl
   * @param {object} deps  store, api, openSlot(id), openHistory(id)
   */
  constructor(listEl, { store, api, openSlot, openHistory }) {
    this.listEl = listEl;
    this.store = store;
    this.api = api;
    this.openSlot = openSlot;
    this.openHistory = openHistory;
    /** @type {Map<string, SlotRow>} */
    this.rows = new Map();
  }

  render() {
    const slots = this.store.list();
    const seen = new Set();
    for (const slot of slots) {
      seen.add(slot.id);
      let row = this.rows.get(slot.id);
      if (!row) {
        row = new SlotRow(slot.id, this);
        this.rows.set(slot.id, row);
      }
      row.update(slot);
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.el.remove();
        this.rows.delete(id);
      }
    }
    // Keep the daemon's order without re-inserting rows that are already in place.
    slots.forEach((slot, i) => {
      const el = this.rows.get(slot.id).el;
      if (this.listEl.children[i] !== el) this.listEl.insertBefore(el, this.listEl.children[i] || null);
    });
  }

  async act(label, fn) {
    try {
      await fn();
    } catch (err) {
      toast(`${label}: ${err.message}`, 'error');
    }
  }
}

class SlotRow {
  constructor(id, list) {
    this.id = id;
    this.list = list;
    this.badge = h('span', { class: 'badge' });
    this.since = h('span', { class: 'since' });
    this.cmd = h('span', { class: 'cmd' });
    this.exit = h('span', { class: 'exit-info' });
    // Claude Code's own figures: cost and context (status line), and drift between the screen
    // and its hooks (the rules may be wrong for that release).
    this.usage = h('span', { class: 'slot-usage' });
    this.drift = h('span', { class: 'slot-drift', role: 'status' });
    this.open = h('button', {
      type: 'button',
      class: 'slot-open',
      title: `Open the terminal of ${id}`,
      onclick: () => list.openSlot(id),
    },
    h('span', { class: 'slot-line' }, h('span', { class: 'slot-id', text: id }), this.badge),
    h('span', { class: 'slot-line sub' }, this.cmd, this.since),
    this.usage,
    this.drift,
    this.exit);
    const { api } = list;
    this.startBtn = actionButton('Start', `Start ${id}`, () => list.act(`start ${id}`, () => api.start(id)));
    this.restartBtn = actionButton('Restart', `Restart ${id}`, () => list.act(`restart ${id}`, () => api.restart(id)));
    this.killBtn = actionButton('Kill', `Kill ${id} (SIGTERM, then SIGKILL)`, () => list.act(`kill ${id}`, () => api.kill(id)));
    this.removeBtn = actionButton('Remove', `Remove ${id}`, () => this.remove());
    this.removeBtn.classList.add('danger');
    this.historyBtn = actionButton('History', `Recorded runs of ${id}`, () => list.openHistory?.(id));
    // A worktree slot: its branch and diff stat; a click shows the diff under the card.
    this.worktree = h('button', {
      type: 'button',
      class: 'slot-worktree',
      title: `Show the diff of ${id} against its base`,
      'aria-expanded': 'false',
      onclick: () => this.toggleDiff(),
    });
    this.worktree.hidden = true;
    this.diff = h('pre', { class: 'slot-diff' });
    this.diff.hidden = true;
    // Asked when Remove was refused because the worktree holds unsaved work.
    this.unsaved = h('div', { class: 'slot-unsaved', role: 'alertdialog', 'aria-label': `${id} has unsaved work` });
    this.unsaved.hidden = true;
    this.el = h('li', { class: 'slot', dataset: { slotId: id } },
      this.open,
      this.worktree,
      this.diff,
      this.unsaved,
      h('div', { class: 'slot-actions' }, this.startBtn, this.restartBtn, this.killBtn, this.historyBtn, this.removeBtn));
  }

  /** Remove needs a second click within a few seconds: it kills the program and forgets the slot. */
  remove() {
    if (!armed(this.removeBtn, 'Really remove?')) return;
    this.list.act(`remove ${this.id}`, async () => {
      try {
        await this.list.api.remove(this.id);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === ErrorCode.WORKTREE_UNSAVED)) throw err;
        this.askAboutWorktree(err.message);
      }
    });
  }

  /**
   * The daemon kept the slot: its worktree holds uncommitted files or commits that exist
   * nowhere else. Says so (the daemon's words: what, where, which branch) and offers to keep
   * the worktree, to discard it (a second click), or to leave the slot as it is.
   */
  askAboutWorktree(message) {
    const close = () => {
      this.unsaved.hidden = true;
      replaceChildren(this.unsaved);
    };
    const removeWith = (how) => this.list.act(`remove ${this.id}`, async () => {
      await this.list.api.remove(this.id, how);
      close();
    });
    const keep = actionButton('Keep worktree', `Remove ${this.id}; its worktree and branch stay on disk`,
      () => removeWith(WorktreeRemoval.KEEP));
    const discard = actionButton('Discard work', `Remove ${this.id} and delete its worktree and branch`,
      () => { if (armed(discard, 'Really discard?')) removeWith(WorktreeRemoval.DISCARD); });
    discard.classList.add('danger');
    replaceChildren(this.unsaved,
      h('p', { text: message }),
      h('div', { class: 'slot-actions' }, keep, discard, actionButton('Cancel', 'Keep the slot as it is', close)));
    this.unsaved.hidden = false;
    keep.focus();
  }

  async toggleDiff() {
    const show = this.diff.hidden;
    this.diff.hidden = !show;
    this.worktree.setAttribute('aria-expanded', String(show));
    if (!show) return;
    this.diff.textContent = 'loading the diff…';
    try {
      const text = await this.list.api.diff(this.id);
      this.diff.textContent = text || 'no changes against the base';
    } catch (err) {
      this.diff.textContent = `cannot load the diff: ${err.message}`;
    }
  }

  update(slot) {
    const wt = slot.worktree;
    this.worktree.hidden = !wt;
    if (wt) {
      this.worktree.replaceChildren(
        h('span', { class: 'wt-branch', text: `⎇ ${wt.branch}` }),
        h('span', { class: 'wt-stat' },
          h('span', { class: 'wt-ins', text: `+${wt.insertions}` }),
          ' ',
          h('span', { class: 'wt-del', text: `−${wt.deletions}` }),
          wt.ahead ? ` ${wt.ahead}↑` : '',
          wt.behind ? ` ${wt.behind}↓` : ''));
      this.worktree.title = `${wt.path}: ${wt.dirtyFiles} uncommitted file(s), ${wt.ahead} commit(s) ahead of ${wt.base}; click for the diff`;
    } else if (!this.diff.hidden) {
      this.diff.hidden = true;
    }
    const badge = badgeFor(slot.state);
    this.badge.className = `badge ${badge.cls}`;
    this.badge.textContent = badge.label;
    this.badge.title = badge.title;
    this.el.classList.toggle('attn', slot.state === State.CONFIRMING);
    this.since.dataset.since = String(slot.stateSince);
    this.since.textContent = formatDuration(Date.now() - slot.stateSince);
    this.since.title = `in this state since ${new Date(slot.stateSince).toLocaleTimeString()}`;
    this.cmd.textContent = [slot.command, ...slot.args].join(' ');
    this.cmd.title = slot.cwd ? `in ${slot.cwd}` : '';
    const u = slot.usage;
    const parts = [];
    if (u && u.costUsd != null) parts.push(formatCost(u.costUsd));
    if (u && u.contextUsedPercent != null) parts.push(`${Math.round(u.contextUsedPercent)}% context`);
    if (u && u.model) parts.push(u.model);
    this.usage.textContent = parts.join(' · ');
    this.usage.hidden = parts.length === 0;
    const tool = slot.stateDetail?.tool;
    this.badge.title = tool ? `${badge.title}: ${tool.name}${tool.summary ? ` (${tool.summary})` : ''}` : badge.title;
    const drift = slot.stateDetail?.drift;
    this.drift.hidden = !drift;
    this.drift.textContent = drift
      ? `⚠ states may be wrong for Claude Code ${drift.claudeVersion || '(unknown release)'}: update the rules`
      : '';
    this.drift.title = drift ? `the screen says ${drift.screen}, Claude Code's hooks say ${drift.hooks}` : '';
    const exited = slot.status === Status.EXITED;
    this.exit.textContent = exited ? exitText(slot) : '';
    this.exit.hidden = !exited;
    this.startBtn.hidden = !exited;
    this.killBtn.hidden = exited;
  }
}

function actionButton(text, title, onclick) {
  return h('button', { type: 'button', class: 'btn small ghost', title, onclick, text });
}

/**
 * A destructive button acts on its second click within 4 s: the first one only relabels it.
 * @param {HTMLElement} button
 * @param {string} question  the label while armed
 * @returns {boolean} whether this click is the second
 */
function armed(button, question) {
  const now = Date.now();
  if (Number(button.dataset.armedUntil || 0) >= now) {
    delete button.dataset.armedUntil;
    button.textContent = button.dataset.label || '';
    return true;
  }
  const until = String(now + 4000);
  button.dataset.label = button.textContent || '';
  button.dataset.armedUntil = until;
  button.textContent = question;
  setTimeout(() => {
    if (button.dataset.armedUntil !== until) return;
    delete button.dataset.armedUntil;
    button.textContent = button.dataset.label || '';
  }, 4000);
  return false;
}

/** Refreshes every "time in state" label; one timer for the whole page. */
export function tickDurations(root = document) {
  const now = Date.now();
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (root.querySelectorAll('[data-since]'))) {
    el.textContent = formatDuration(now - Number(el.dataset.since));
  }
}
