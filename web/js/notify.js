// @ts-check
// Telling the user a slot needs them: a count in the document title and the header, and a
// browser notification when a slot starts waiting for a confirmation (if the user allowed it).

const BASE_TITLE = 'missiond';

export function showNeedsYou(count, badgeEl) {
  document.title = count > 0 ? `(${count}) ${BASE_TITLE}` : BASE_TITLE;
  badgeEl.hidden = count === 0;
  badgeEl.textContent = count === 1 ? '1 slot needs you' : `${count} slots need you`;
}

/** Wires the "Enable notifications" button; shown only while permission is undecided. */
export function setupNotificationButton(button) {
  if (!('Notification' in window)) return;
  const refresh = () => { button.hidden = Notification.permission !== 'default'; };
  button.addEventListener('click', async () => {
    try {
      await Notification.requestPermission();
    } finally {
      refresh();
    }
  });
  refresh();
}

/** A desktop notification for a slot that started confirming; clicking it opens the slot. */
export function notifyConfirming(slot, onClick) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const dialog = slot.stateDetail && slot.stateDetail.dialog;
  const body = dialog ? [dialog.title, dialog.question, dialog.body].filter(Boolean).join('\n') : 'waiting for a confirmation';
  try {
    const n = new Notification(`${slot.id} needs you`, { body, tag: `missiond-${slot.id}` });
    n.onclick = () => {
      window.focus();
      onClick(slot.id);
      n.close();
    };
  } catch {
    // Some browsers only allow notifications from a service worker; the title badge remains.
  }
}
