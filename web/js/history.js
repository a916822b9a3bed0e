// @ts-check
// The History view of a slot: its recorded runs (GET /api/slots/{id}/runs), one of them in the
// vendored asciinema player (loaded on first use), a timeline strip coloured by the slot's
// state with ticks for dialogs and answers, "Next dialog" and a speed control.
//
// The recording's markers (docs/RECORDINGS.md) drive the strip: `state:<s>` starts a segment,
// `dialog:...` and `answer:...` are ticks; a click on the strip or a tick seeks there.

import { h, replaceChildren, formatDuration, toast } from './dom.js';
import { Cast, State } from './protocol.js';

const PLAYER_JS = 'vendor/asciinema-player/asciinema-player.min.js';
const PLAYER_CSS = 'vendor/asciinema-player/asciinema-player.css';
const SPEEDS = [0.5, 1, 2, 4, 8, 16];

let playerLoading = null;

/** Loads the asciinema player once (a classic script defining window.AsciinemaPlayer). */
function loadPlayer() {
  if (/** @type {any} */ (window).AsciinemaPlayer) return Promise.resolve(/** @type {any} */ (window).AsciinemaPlayer);
  if (!playerLoading) {
    playerLoading = new Promise((resolve, reject) => {
      document.head.append(h('link', { rel: 'stylesheet', href: PLAYER_CSS }));
      const script = h('script', { src: PLAYER_JS });
      script.addEventListener('load', () => resolve(/** @type {any} */ (window).AsciinemaPlayer));
      script.addEventListener('error', () => { playerLoading = null; reject(new Error('cannot load the player')); });
      document.head.append(script);
    });
  }
  return playerLoading;
}

/** The events of an asciicast v2 text: { header, duration, markers: [{time, label}] }. */
export function parseCast(text) {
  const lines = text.split('\n');
  const header = JSON.parse(lines[0]);
  const markers = [];
  let duration = 0;
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    let event;
    try { event = JSON.parse(line); } catch { continue; }
    duration = Math.max(duration, event[0]);
    if (event[1] === Cast.MARKER) markers.push({ time: event[0], label: event[2] });
  }
  return { header, duration, markers };
}

/** Segments of the strip: [{state, from, to}] from the `state:` markers. */
export function stateSegments(markers, duration) {
  const segments = [];
  let current = { state: State.STARTING, from: 0 };
  for (const m of markers) {
    if (!m.label.startsWith(Cast.STATE_PREFIX)) continue;
    segments.push({ ...current, to: m.time });
    current = { state: m.label.slice(Cast.STATE_PREFIX.length), from: m.time };
  }
  segments.push({ ...current, to: duration });
  return segments.filter((s) => s.to > s.from);
}

export class HistoryView {
  constructor(api) {
    this.api = api;
    this.player = null;
    this.cast = null;
    this.text = null;
    this.speed = 1;
    this.runsEl = h('ul', { class: 'history-runs', 'aria-label': 'Recorded runs' });
    this.playerEl = h('div', { class: 'history-player' });
    this.stripEl = h('div', { class: 'history-strip', role: 'group', 'aria-label': 'Timeline of states, dialogs and answers' });
    this.infoEl = h('p', { class: 'history-info' });
    this.nextBtn = h('button', { type: 'button', class: 'btn small', text: 'Next dialog', onclick: () => this.nextDialog() });
    this.speedSel = h('select', { class: 'history-speed', 'aria-label': 'Speed', onchange: () => this.setSpeed(Number(this.speedSel.value)) },
      SPEEDS.map((s) => h('option', { value: String(s), selected: s === 1, text: `${s}×` })));
    this.title = h('h2', { class: 'history-title' });
    this.el = h('dialog', { class: 'modal history', id: 'history-dialog', 'aria-labelledby': 'history-title' },
      h('div', { class: 'history-head' }, this.title,
        h('span', { class: 'spacer' }),
        h('label', { class: 'history-speed-label' }, 'Speed ', this.speedSel),
        this.nextBtn,
        h('button', { type: 'button', class: 'btn small ghost', text: 'Close', onclick: () => this.close() })),
      h('div', { class: 'history-body' }, this.runsEl,
        h('div', { class: 'history-main' }, this.playerEl, this.stripEl, this.infoEl)));
    this.title.id = 'history-title';
    this.el.addEventListener('close', () => this.dispose());
    document.body.append(this.el);
  }

  async open(slotId) {
    this.slotId = slotId;
    this.title.textContent = `History of ${slotId}`;
    replaceChildren(this.runsEl, h('li', { class: 'empty', text: 'loading…' }));
    replaceChildren(this.stripEl);
    replaceChildren(this.playerEl);
    this.infoEl.textContent = '';
    if (!this.el.open) this.el.showModal();
    let runs;
    try {
      runs = await this.api.runs(slotId);
    } catch (err) {
      replaceChildren(this.runsEl, h('li', { class: 'empty', text: `cannot list the runs: ${err.message}` }));
      return;
    }
    if (!runs.length) {
      replaceChildren(this.runsEl, h('li', { class: 'empty', text: 'No recorded runs.' }));
      return;
    }
    replaceChildren(this.runsEl, runs.slice().reverse().map((run) => h('li', {},
      h('button', {
        type: 'button', class: 'history-run', dataset: { run: String(run.run) },
        onclick: () => this.play(run.run),
      },
      h('span', { class: 'run-n', text: `Run ${run.run}${run.recording ? ' (recording)' : ''}` }),
      h('span', { class: 'run-sub', text: `${new Date(run.startedAt).toLocaleString()} · ${formatDuration(run.duration * 1000)} · ${Math.ceil(run.bytes / 1024)} KiB` })))));
    await this.play(runs[runs.length - 1].run);
  }

  async play(run) {
    for (const b of this.runsEl.querySelectorAll('.history-run')) b.classList.toggle('active', b.dataset.run === String(run));
    this.run = run;
    try {
      const [Player, text] = await Promise.all([loadPlayer(), this.api.cast(this.slotId, run)]);
      this.text = text;
      this.cast = parseCast(text);
      await this.mount(Player, 0);
      this.drawStrip();
      const dialogs = this.cast.markers.filter((m) => m.label.startsWith(Cast.DIALOG_PREFIX)).length;
      const answers = this.cast.markers.filter((m) => m.label.startsWith(Cast.ANSWER_PREFIX)).length;
      this.infoEl.textContent = `${this.cast.header.command || ''} · ${this.cast.header.width}×${this.cast.header.height} · ${dialogs} dialog(s), ${answers} answer(s)`;
    } catch (err) {
      toast(`run ${run}: ${err.message}`, 'error');
    }
  }

  /** A new player at `startAt` seconds (a seek: the player's own `startAt` waits for a play). */
  async mount(Player, startAt) {
    this.player?.dispose();
    replaceChildren(this.playerEl);
    this.player = Player.create({ data: this.text }, this.playerEl, {
      speed: this.speed, fit: 'width', theme: 'asciinema', preload: true,
    });
    if (startAt > 0) {
      // A seek before the recording is loaded is lost: wait until the player knows its length.
      const player = this.player;
      for (let i = 0; i < 100 && !(await player.getDuration()); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await player.seek(startAt);
    }
  }

  drawStrip() {
    const { duration, markers } = this.cast;
    const pct = (t) => `${duration > 0 ? (100 * t) / duration : 0}%`;
    const children = stateSegments(markers, duration).map((s) => {
      const seg = h('span', { class: `seg seg-${s.state}`, title: `${s.state} ${s.from.toFixed(1)}–${s.to.toFixed(1)} s` });
      seg.style.left = pct(s.from);
      seg.style.width = pct(s.to - s.from);
      return seg;
    });
    for (const m of markers) {
      const kind = m.label.startsWith(Cast.DIALOG_PREFIX) ? 'dialog' : m.label.startsWith(Cast.ANSWER_PREFIX) ? 'answer' : null;
      if (!kind) continue;
      const tick = h('button', {
        type: 'button', class: `tick tick-${kind}`, title: `${m.time.toFixed(1)} s ${m.label}`,
        dataset: { time: String(m.time), label: m.label },
        onclick: (e) => { e.stopPropagation(); this.seek(m.time); },
      });
      tick.style.left = pct(m.time);
      children.push(tick);
    }
    replaceChildren(this.stripEl, children);
    this.stripEl.onclick = (e) => {
      const box = this.stripEl.getBoundingClientRect();
      this.seek(((e.clientX - box.left) / box.width) * duration);
    };
  }

  async seek(time) {
    if (!this.player) return;
    await this.player.seek(time);
  }

  async nextDialog() {
    if (!this.player || !this.cast) return;
    const now = await this.player.getCurrentTime();
    const next = this.cast.markers.find((m) => m.label.startsWith(Cast.DIALOG_PREFIX) && m.time > now + 0.01);
    if (!next) {
      toast('no later dialog in this run');
      return;
    }
    await this.seek(next.time);
  }

  /** The player has no speed setter: a new one takes over where the old one was. */
  async setSpeed(speed) {
    this.speed = speed;
    if (!this.player) return;
    const at = await this.player.getCurrentTime();
    await this.mount(/** @type {any} */ (window).AsciinemaPlayer, at);
  }

  close() {
    this.el.close();
  }

  dispose() {
    this.player?.dispose();
    this.player = null;
  }
}
