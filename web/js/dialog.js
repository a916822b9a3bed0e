// @ts-check
// The dialog panel: a confirming slot's parsed dialog (title, question, body, options) with one
// button per option; a click answers through POST /api/slots/{id}/confirm.

import { h } from './dom.js';
import { Meaning, State } from './protocol.js';

const KIND_LABEL = {
  permission: 'Permission',
  trust: 'Trust this folder?',
  question: 'Question',
  api_key: 'API key',
  other: 'Dialog',
};

/**
 * A card for `slot` (state confirming). `onAnswer(option)` returns a promise; buttons are
 * disabled while it runs so a double click cannot answer the next dialog too.
 * @param {import('./protocol.js').SlotInfo} slot
 * @param {(answer: number | import('./protocol.js').Meaning) => Promise<unknown>} onAnswer
 * @param {{ showSlot?: boolean }} [opts]
 */
export function dialogCard(slot, onAnswer, { showSlot = false } = {}) {
  const dialog = slot.stateDetail && slot.stateDetail.dialog;
  const status = h('p', { class: 'dialog-status', role: 'status' });
  const card = h('section', {
    class: 'dialog-card',
    role: 'group',
    'aria-label': `${slot.id} needs you`,
    dataset: { slotId: slot.id },
  });
  const heading = h('header', { class: 'dialog-head' },
    h('span', { class: 'badge confirm', text: 'needs you' }),
    showSlot ? h('strong', { class: 'dialog-slot', text: slot.id }) : null,
    h('span', { class: 'dialog-kind', text: dialog ? KIND_LABEL[dialog.kind] || dialog.kind : 'Dialog' }),
    dialog && dialog.title ? h('span', { class: 'dialog-title', text: dialog.title }) : null);
  card.append(heading);
  if (!dialog) {
    card.append(h('p', { class: 'dialog-question', text: 'The program is waiting for an answer; open its terminal to reply.' }));
    return card;
  }
  if (dialog.body) card.append(h('pre', { class: 'dialog-body', text: dialog.body }));
  card.append(h('p', { class: 'dialog-question', text: dialog.question || 'Choose an option' }));
  /** A button answering `answer` (an option number or a meaning), labelled `n` and `label`. */
  const button = (answer, n, label, { selected = false, refuses = false, meaning = null } = {}) => h('button', {
    type: 'button',
    class: `btn option${selected ? ' selected' : ''}${refuses ? ' refuse' : ''}`,
    dataset: typeof answer === 'number' ? { option: String(answer), meaning: meaning || '' } : { answer },
    title: refuses ? `Refuse: ${label}` : `Answer ${n} ${label}`,
    onclick: async () => {
      for (const b of buttons) b.disabled = true;
      status.textContent = `Sending ${n}…`;
      try {
        await onAnswer(answer);
        status.textContent = `Answered ${n} ${label}`;
      } catch (err) {
        status.textContent = `Could not answer: ${err.message}`;
        for (const b of buttons) b.disabled = false;
      }
    },
  }, h('span', { class: 'opt-n', text: n }), h('span', { class: 'opt-label', text: label }));
  const buttons = dialog.options.map((opt) => button(opt.n, `${opt.n}.`, opt.label,
    { selected: opt.selected, refuses: opt.meaning === Meaning.NO, meaning: opt.meaning }));
  // No option refuses but Escape does (Claude Code 2.0.x): offer it as its own button.
  if (dialog.cancellable && !dialog.options.some((o) => o.meaning === Meaning.NO)) {
    buttons.push(button(Meaning.NO, 'Esc', 'Refuse', { refuses: true }));
  }
  card.append(h('div', { class: 'dialog-options' }, buttons), status);
  return card;
}

/**
 * A stable key for a dialog, to avoid rebuilding (and losing focus) when nothing changed.
 * @param {import('./protocol.js').SlotInfo} slot
 */
export function dialogKey(slot) {
  return slot.state === State.CONFIRMING ? JSON.stringify(slot.stateDetail && slot.stateDetail.dialog) : '';
}
