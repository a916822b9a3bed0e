// @ts-check
// Entry point: takes the token, checks it, then wires the live streams (/events, /tasks) to the
// slot list, the terminals, the dialog panels and the tasks panel.

import { h, formatCost } from './dom.js';
import { takeToken, saveToken, forgetToken } from './auth.js';
import { Api, socketUrl } from './api.js';
import { ReconnectingSocket } from './socket.js';
import { SlotStore } from './slots.js';
import { SlotList, tickDurations } from './slot-list.js';
import { HistoryView } from './history.js';
import { Workspace } from './workspace.js';
import { dialogCard, dialogKey } from './dialog.js';
import { TaskStore, renderTasks } from './tasks.js';
import { setupLaunch } from './launch.js';
import { showNeedsYou, setupNotificationButton, notifyConfirming } from './notify.js';

const $ = (id) => document.getElementById(id);

function showAuth(reason) {
  $('app').hidden = true;
  $('auth').hidden = false;
  $('auth-reason').textContent = reason;
  $('conn').textContent = 'not signed in';
  $('conn').className = 'conn down';
  for (const id of ['launch-btn', 'layout-btn', 'notify-btn']) $(id).hidden = true;
  $('auth-token').focus();
}

$('auth-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const value = /** @type {HTMLInputElement} */ ($('auth-token')).value.trim();
  if (!value) return;
  saveToken(value);
  location.reload();
});

async function boot() {
  const token = takeToken();
  if (!token) {
    showAuth('This page was opened without a token.');
    return;
  }
  const api = new Api(token);
  let initial = null;
  try {
    initial = await api.slots();
  } catch (err) {
    if (err.status === 401) {
      forgetToken();
      showAuth('The daemon refused the token this page has (401 Unauthorized): it may be from another daemon, or the token file changed.');
      return;
    }
    // Unreachable or failing: start anyway; the event stream reconnects when the daemon is back.
  }
  startApp(token, api, initial);
}

function startApp(token, api, initialSlots) {
  $('app').hidden = false;
  const store = new SlotStore();
  const tasks = new TaskStore();
  const workspace = new Workspace({
    tabsEl: $('tabs'), panesEl: $('panes'), emptyEl: $('panes-empty'), api, token, store,
  });
  const openSlot = (id) => { workspace.show(id); renderAll(); };
  let history = null;
  const openHistory = (id) => { history ??= new HistoryView(api); history.open(id); };
  const slotList = new SlotList($('slot-list'), { store, api, openSlot, openHistory });

  const attentionKeys = new Map();
  function renderAttention() {
    // Dialogs of slots without an open pane; an open pane shows its own dialog panel.
    const host = $('attention');
    const waiting = store.needingYou().filter((s) => !workspace.has(s.id));
    const ids = new Set(waiting.map((s) => s.id));
    for (const card of /** @type {HTMLElement[]} */ ([...host.children])) {
      if (!ids.has(card.dataset.slotId)) { card.remove(); attentionKeys.delete(card.dataset.slotId); }
    }
    for (const slot of waiting) {
      const key = dialogKey(slot);
      if (attentionKeys.get(slot.id) === key) continue;
      attentionKeys.set(slot.id, key);
      const card = dialogCard(slot, (n) => api.confirm(slot.id, n), { showSlot: true });
      card.append(h('button', {
        type: 'button', class: 'btn small ghost open-slot', text: `Open ${slot.id}`, onclick: () => openSlot(slot.id),
      }));
      const old = /** @type {HTMLElement[]} */ ([...host.children]).find((c) => c.dataset.slotId === slot.id);
      if (old) old.replaceWith(card); else host.append(card);
    }
  }

  function renderAll() {
    slotList.render();
    workspace.update();
    renderAttention();
    const count = store.list().length;
    $('slot-count').textContent = count ? String(count) : '';
    const withUsage = store.list().some((s) => s.usage && s.usage.costUsd != null);
    $('slot-cost').textContent = withUsage ? `total ${formatCost(store.totalCost())}` : '';
    $('slot-empty').hidden = count > 0;
    showNeedsYou(store.needingYou().length, $('needs-you'));
  }

  store.addEventListener('change', renderAll);
  store.addEventListener('started', (/** @type {CustomEvent} */ ev) => workspace.slotStarted(ev.detail));
  store.addEventListener('removed', (/** @type {CustomEvent} */ ev) => workspace.close(ev.detail));
  store.addEventListener('confirming', (/** @type {CustomEvent} */ ev) => {
    const slot = store.get(ev.detail);
    if (slot && (document.hidden || !workspace.has(slot.id))) notifyConfirming(slot, openSlot);
  });
  if (initialSlots) store.replaceAll(initialSlots);
  else renderAll();

  const conn = $('conn');
  const events = new ReconnectingSocket(() => socketUrl('/events', token), {
    onOpen: () => { conn.textContent = 'live'; conn.className = 'conn live'; },
    onMessage: (msg) => store.apply(msg),
    onClose: (_ev, retry, delay) => {
      conn.textContent = retry ? `daemon unreachable; retrying in ${(delay / 1000).toFixed(1)}s` : 'disconnected';
      conn.className = 'conn down';
      // A refused upgrade looks like any other drop: ask REST whether the token is still good
      // (a daemon restarted with a new token file), rather than retry for ever.
      api.slots().catch((err) => {
        if (err.status !== 401) return;
        events.stop();
        taskSocket.stop();
        for (const id of [...workspace.open.keys()]) workspace.close(id);
        forgetToken();
        showAuth('The daemon no longer accepts this page\'s token (401 Unauthorized): it was restarted with another one.');
      });
    },
  });
  events.start();

  const taskEls = { groupsEl: $('task-groups'), emptyEl: $('tasks-empty'), summaryEl: $('task-summary') };
  tasks.addEventListener('change', () => renderTasks(tasks, taskEls));
  const taskSocket = new ReconnectingSocket(() => socketUrl('/tasks', token), {
    onMessage: (msg) => tasks.apply(msg),
  });
  taskSocket.start();

  setInterval(() => tickDurations(), 1000);
  setupNotificationButton($('notify-btn'));
  setupLaunch({
    button: $('launch-btn'),
    dialog: $('launch-dialog'),
    form: $('launch-form'),
    errorEl: $('launch-error'),
    api,
    onLaunched: (id) => openSlot(id),
  });
  const layoutBtn = $('layout-btn');
  layoutBtn.addEventListener('click', () => {
    const split = !workspace.split;
    workspace.setSplit(split);
    layoutBtn.setAttribute('aria-pressed', String(split));
    layoutBtn.textContent = split ? 'Tabs' : 'Side by side';
    layoutBtn.title = split ? 'Show one terminal at a time' : 'Show open terminals side by side';
  });

  // A notification's link (`#slot=ID`) opens that slot.
  const linked = new URLSearchParams(location.hash.replace(/^#/, '')).get('slot');
  if (linked && /^[A-Za-z0-9_-]{1,64}$/.test(linked)) openSlot(linked);

  // Test and debugging hook: read-only views of the page's state.
  /** @type {any} */ (window).__missiond = {
    store,
    tasks,
    workspace,
    open: openSlot,
    bufferText: (id) => workspace.pane(id)?.view?.bufferText() ?? null,
    termSize: (id) => {
      const term = workspace.pane(id)?.view?.term;
      return term ? { cols: term.cols, rows: term.rows } : null;
    },
    paneStatus: (id) => workspace.pane(id)?.view?.status ?? null,
    eventsOpen: () => events.open,
    history: () => history,
  };
}

boot();
