// @ts-check
// The open terminals: a tab per attached slot, shown one at a time or side by side.

import { h } from './dom.js';
import { Pane } from './pane.js';
import { State } from './protocol.js';

export class Workspace {
  constructor({ tabsEl, panesEl, emptyEl, api, token, store }) {
    this.tabsEl = tabsEl;
    this.panesEl = panesEl;
    this.emptyEl = emptyEl;
    this.deps = { api, token, store };
    /** @type {Map<string, {pane: Pane, tab: HTMLElement}>} */
    this.open = new Map();
    this.active = null;
    this.split = false;
  }

  has(slotId) {
    return this.open.has(slotId);
  }

  /** Opens (or shows) the slot's terminal and focuses it. */
  show(slotId) {
    if (!this.open.has(slotId)) {
      const pane = new Pane(slotId, { ...this.deps, onClose: (id) => this.close(id) });
      const tab = h('button', {
        type: 'button',
        role: 'tab',
        class: 'tab',
        id: `tab-${slotId}`,
        'aria-controls': `pane-${slotId}`,
        dataset: { slotId },
        onclick: () => this.activate(slotId),
        onkeydown: (ev) => this.tabKey(ev, slotId),
      }, h('span', { class: 'tab-dot' }), h('span', { text: slotId }));
      this.tabsEl.append(tab);
      this.panesEl.append(pane.el);
      this.open.set(slotId, { pane, tab });
      this.emptyEl.hidden = true;
      this.activate(slotId); // visible before xterm measures its cell size
      pane.mount(this.deps.token);
    }
    this.activate(slotId);
    this.open.get(slotId).pane.focus();
  }

  activate(slotId) {
    this.active = slotId;
    for (const [id, { pane, tab }] of this.open) {
      const on = id === slotId;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      pane.el.classList.toggle('active', on);
    }
  }

  /** Left/Right move between tabs, Delete closes one: the tab list is usable without a mouse. */
  tabKey(ev, slotId) {
    const ids = [...this.open.keys()];
    const i = ids.indexOf(slotId);
    let next = null;
    if (ev.key === 'ArrowRight') next = ids[(i + 1) % ids.length];
    else if (ev.key === 'ArrowLeft') next = ids[(i - 1 + ids.length) % ids.length];
    else if (ev.key === 'Delete') { this.close(slotId); return; }
    if (next) {
      ev.preventDefault();
      this.activate(next);
      this.open.get(next).tab.focus();
    }
  }

  close(slotId) {
    const entry = this.open.get(slotId);
    if (!entry) return;
    entry.pane.dispose();
    entry.tab.remove();
    this.open.delete(slotId);
    if (this.active === slotId) {
      const next = [...this.open.keys()].pop();
      if (next) this.activate(next);
      else this.active = null;
    }
    this.emptyEl.hidden = this.open.size > 0;
  }

  setSplit(split) {
    this.split = split;
    this.panesEl.classList.toggle('split', split);
  }

  /** A store change: refresh the panes (badges, dialogs) and the tab dots. */
  update() {
    for (const [id, { pane, tab }] of this.open) {
      const slot = this.deps.store.get(id);
      tab.dataset.state = slot ? slot.state : State.EXITED;
      pane.update();
    }
  }

  slotStarted(slotId) {
    this.open.get(slotId)?.pane.slotStarted();
  }

  pane(slotId) {
    return this.open.get(slotId)?.pane;
  }
}
