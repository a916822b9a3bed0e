// @ts-check
// The "Launch slot" dialog: builds a SlotSpec and POSTs it to /api/slots.

export function setupLaunch({ button, dialog, form, errorEl, api, onLaunched }) {
  const cancel = form.querySelector('[data-cancel]');
  button.addEventListener('click', () => {
    errorEl.textContent = '';
    dialog.showModal();
    form.elements.id.focus();
  });
  cancel.addEventListener('click', () => dialog.close());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errorEl.textContent = '';
    let spec;
    try {
      spec = specFromForm(form);
    } catch (err) {
      errorEl.textContent = err.message;
      return;
    }
    const submit = form.querySelector('[type=submit]');
    submit.disabled = true;
    try {
      await api.launch(spec);
      dialog.close();
      form.reset();
      onLaunched(spec.id);
    } catch (err) {
      errorEl.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  });
}

/** Only the fields the user filled in: the daemon fills in the defaults. */
function specFromForm(form) {
  const f = form.elements;
  const spec = { id: f.id.value.trim() };
  if (f.command.value.trim()) spec.command = f.command.value.trim();
  const args = splitArgs(f.args.value);
  if (args.length) spec.args = args;
  if (f.cwd.value.trim()) spec.cwd = f.cwd.value.trim();
  if (f.cols.value) spec.cols = Number(f.cols.value);
  if (f.rows.value) spec.rows = Number(f.rows.value);
  if (f.profile.value) spec.profile = f.profile.value;
  return spec;
}

/** Splits on spaces, keeping "double" or 'single' quoted parts together. */
export function splitArgs(text) {
  const args = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(text)) !== null) {
    if (m[1] !== undefined) args.push(m[1].replace(/\\(.)/g, '$1'));
    else if (m[2] !== undefined) args.push(m[2]);
    else args.push(m[3]);
  }
  return args;
}
