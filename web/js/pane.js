// @ts-check
// A slot's pane: header (state, connection, fit, read-only toggle, close), the dialog panel when
// the slot needs an answer, the terminal, a key bar for touch screens, a prompt box for Claude
// Code slots, and the slot's history of answers (from the daemon's audit trail).

import { h, toast } from './dom.js';
import { badgeFor } from './states.js';
import { AUDIT_CONFIRM, PROFILE_CLAUDE_CODE, State } from './protocol.js';
import { dialogCard, dialogKey } from './dialog.js';
import { TerminalView } from './terminal.js';

export class Pane {
  constructor(slotId, { api, token, store, onClose }) {
    this.slotId = slotId;
    this.api = api;
    this.store = store;
    this.badge = h('span', { class: 'badge' });
    this.conn = h('span', { class: 'pane-conn', role: 'status' });
    this.size = h('span', { class: 'pane-size', title: "the slot's terminal size" });
    this.roBtn = h('button', {
      type: 'button',
      class: 'btn small ghost',
      'aria-pressed': 'false',
      title: 'Read-only: watch without sending keys or resizing the slot',
      text: 'Read-only',
      onclick: () => this.setReadOnly(!this.view.readOnly),
    });
    this.fitBtn = h('button', {
      type: 'button',
      class: 'btn small ghost',
      title: 'Resize the slot to this window (for every viewer)',
      text: 'Fit',
      onclick: () => this.view?.fitToPane(true),
    });
    const closeBtn = h('button', {
      type: 'button',
      class: 'btn small ghost',
      title: `Detach from ${slotId}`,
      'aria-label': `Close ${slotId}`,
      text: '✕',
      onclick: () => onClose(slotId),
    });
    this.dialogHost = h('div', { class: 'pane-dialog' });
    this.dialogKey = '';
    this.termHost = h('div', { class: 'term-host' });
    this.promptInput = h('textarea', {
      class: 'prompt-input',
      rows: '1',
      placeholder: 'Send a prompt (Enter to send, Shift+Enter for a new line)',
      'aria-label': `Prompt for ${slotId}`,
      onkeydown: (ev) => {
        if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
          ev.preventDefault();
          this.sendPrompt();
        }
      },
    });
    this.promptForm = h('form', {
      class: 'prompt-form',
      onsubmit: (ev) => { ev.preventDefault(); this.sendPrompt(); },
    }, this.promptInput, h('button', { type: 'submit', class: 'btn small', text: 'Send' }));

    this.el = h('section', {
      class: 'pane',
      role: 'tabpanel',
      id: `pane-${slotId}`,
      'aria-label': `Terminal of ${slotId}`,
      dataset: { slotId },
    },
    h('header', { class: 'pane-head' },
      h('strong', { class: 'pane-title', text: slotId }), this.badge, this.conn,
      h('span', { class: 'spacer' }), this.size, this.fitBtn, this.roBtn, closeBtn),
    this.dialogHost,
    this.termHost,
    this.keyBar(),
    this.promptForm,
    this.historyPanel());
  }

  /** Esc, Tab, arrows, Ctrl-C and Enter, which a phone keyboard lacks (shown on touch screens). */
  keyBar() {
    const keys = [['esc', 'Esc'], ['tab', 'Tab'], ['left', '←'], ['up', '↑'], ['down', '↓'], ['right', '→'],
      ['ctrlc', 'Ctrl-C'], ['enter', 'Enter']];
    return h('div', { class: 'keybar', role: 'toolbar', 'aria-label': `Keys for ${this.slotId}` },
      keys.map(([name, label]) => h('button', {
        type: 'button',
        class: 'btn key',
        dataset: { key: name },
        text: label,
        // Keep the focus (and a phone's keyboard) where it is.
        onmousedown: (ev) => ev.preventDefault(),
        onclick: () => this.view?.sendKey(name),
      })));
  }

  /** Who answered this slot's dialogs, and how: loaded from /api/audit when opened. */
  historyPanel() {
    const list = h('ol', { class: 'history-list' });
    const panel = h('details', { class: 'history' }, h('summary', { text: 'Answers' }), list);
    panel.addEventListener('toggle', async () => {
      if (!panel.open) return;
      list.replaceChildren(h('li', { class: 'empty', text: 'loading…' }));
      try {
        const entries = (await this.api.audit(this.slotId)).filter((e) => e.action === AUDIT_CONFIRM);
        list.replaceChildren(...entries.reverse().map(historyItem));
        if (!entries.length) list.append(h('li', { class: 'empty', text: 'No answers yet.' }));
      } catch (err) {
        list.replaceChildren(h('li', { class: 'empty', text: `Cannot load the history: ${err.message}` }));
      }
    });
    return panel;
  }

  /** Creates the terminal; the pane must already be in the document so xterm can measure. */
  mount(token) {
    this.view = new TerminalView(this.slotId, this.termHost, {
      token,
      lastScreen: () => this.api.screen(this.slotId, 'ansi'),
    });
    this.view.addEventListener('status', (/** @type {CustomEvent} */ ev) => this.showStatus(ev.detail));
    this.view.addEventListener('size', (/** @type {CustomEvent} */ ev) => { this.size.textContent = `${ev.detail.cols}×${ev.detail.rows}`; });
    this.view.addEventListener('error', (/** @type {CustomEvent} */ ev) => toast(`${this.slotId}: ${ev.detail}`, 'error'));
    this.showStatus({ status: this.view.status, text: this.view.statusText });
    this.update();
  }

  showStatus({ status, text }) {
    this.conn.textContent = text;
    this.conn.className = `pane-conn ${status}`;
  }

  setReadOnly(readOnly) {
    this.view.setReadOnly(readOnly);
    this.roBtn.setAttribute('aria-pressed', String(readOnly));
    this.el.classList.toggle('read-only', readOnly);
    this.promptInput.disabled = readOnly;
  }

  /** Refreshes from the store: badge, dialog panel, and reattach when the slot runs again. */
  update() {
    const slot = this.store.get(this.slotId);
    if (!slot) return;
    const badge = badgeFor(slot.state);
    this.badge.className = `badge ${badge.cls}`;
    this.badge.textContent = badge.label;
    this.promptForm.hidden = slot.profile !== PROFILE_CLAUDE_CODE;
    const key = dialogKey(slot);
    if (key !== this.dialogKey) {
      this.dialogKey = key;
      this.dialogHost.replaceChildren();
      if (slot.state === State.CONFIRMING) {
        this.dialogHost.append(dialogCard(slot, (n) => this.api.confirm(this.slotId, n)));
      }
    }
  }

  slotStarted() {
    this.view?.slotStarted();
  }

  async sendPrompt() {
    const text = this.promptInput.value;
    if (!text.trim()) return;
    try {
      await this.api.prompt(this.slotId, text);
      this.promptInput.value = '';
    } catch (err) {
      toast(err.status === 409 ? `${this.slotId} is not idle: ${err.message}` : `prompt: ${err.message}`, 'error');
    }
  }

  focus() {
    this.view?.focus();
  }

  dispose() {
    this.view?.dispose();
    this.el.remove();
  }
}

function historyItem(entry) {
  const who = [entry.actor.client, entry.actor.remote].filter(Boolean).join(' ');
  const opt = entry.option ? `${entry.option.n}. ${entry.option.label}` : '?';
  const dialog = entry.dialog ? [entry.dialog.title, entry.dialog.body].filter(Boolean).join(': ') : '';
  return h('li', { class: 'history-item' },
    h('time', { text: new Date(entry.time).toLocaleString() }),
    h('strong', { text: ` ${opt}` }),
    h('span', { text: ` by ${who}` }),
    dialog ? h('div', { class: 'history-dialog', text: dialog }) : null);
}
