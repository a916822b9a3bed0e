// @ts-check
// One attached terminal: xterm.js on /pty/<slot>. Shows the slot's screen at its real size,
// forwards keys (unless read-only), and reconnects with backoff, resetting before each fresh
// `screen` frame so nothing is duplicated.
//
// Viewers never fight over the size: a desktop viewer proposes its pane's size, which the daemon
// applies only when it is the slot's sole viewer (else it answers with the real size); a phone
// never proposes one (the terminal scrolls inside its box); "Fit" (fitToPane(true)) always
// resizes the slot to this pane.

import { Terminal } from '../vendor/xterm/xterm.mjs';
import { FitAddon } from '../vendor/addon-fit/addon-fit.mjs';
import { Unicode11Addon } from '../vendor/addon-unicode11/addon-unicode11.mjs';
import { ReconnectingSocket } from './socket.js';
import { socketUrl } from './api.js';
import { mirrorInlineStyles } from './csp-styles.js';
import { Close, FINAL_PTY_CLOSES, PtyMsg } from './protocol.js';

/** A phone-sized viewport (the same width the stylesheet's one-column layout starts at). */
const PHONE = window.matchMedia('(max-width: 700px)');

const THEME = {
  background: '#11151c',
  foreground: '#d7dde8',
  cursor: '#e6edf7',
  cursorAccent: '#11151c',
  selectionBackground: '#3a4a66',
  black: '#1b2029', red: '#e06c75', green: '#98c379', yellow: '#e5c07b',
  blue: '#61afef', magenta: '#c678dd', cyan: '#56b6c2', white: '#d7dde8',
  brightBlack: '#5c6370', brightRed: '#ef8f98', brightGreen: '#b5e08f', brightYellow: '#f0d49b',
  brightBlue: '#8cc8ff', brightMagenta: '#dda0f0', brightCyan: '#7fd4df', brightWhite: '#ffffff',
};

export class TerminalView extends EventTarget {
  /**
   * @param {string} slotId
   * @param {HTMLElement} host   element the terminal fills (must be in the document)
   * @param {object} opts        token, readOnly, lastScreen() -> Promise<ScreenText> (ANSI)
   */
  constructor(slotId, host, { token, readOnly = false, lastScreen = null }) {
    super();
    this.slotId = slotId;
    this.host = host;
    this.token = token;
    this.readOnly = readOnly;
    this.lastScreen = lastScreen;
    /** 'connecting' | 'live' | 'reconnecting' | 'exited' | 'gone' */
    this.status = 'connecting';
    this.statusText = 'connecting…';
    this.slotSize = null;
    this.lastSentSize = null;

    this.unmirror = mirrorInlineStyles(host);
    this.term = new Terminal({
      allowProposedApi: true, // the Unicode 11 width tables are a proposed API
      scrollback: 5000,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
      fontSize: PHONE.matches ? 11 : 13,
      theme: THEME,
      cursorBlink: false,
      disableStdin: readOnly,
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = '11';
    swallowTerminalQueries(this.term);
    this.term.open(host);

    this.term.onData((data) => this.sendInput(data));
    this.term.onBinary((data) => this.sendInput(data));

    this.socket = new ReconnectingSocket(
      // Output as binary frames: the raw bytes, no JSON to parse, nothing lost to decoding.
      () => socketUrl(`/pty/${encodeURIComponent(this.slotId)}`, this.token,
        this.readOnly ? { mode: 'ro', binary: '1' } : { binary: '1' }),
      {
        onOpen: () => {
          this.setStatus('connecting', 'attaching…');
          if (document.hidden) this.sendVisibility();
        },
        onMessage: (msg) => this.onMessage(msg),
        onBytes: (bytes) => this.term.write(bytes),
        onClose: (ev, retry, delay) => this.onClose(ev, retry, delay),
        shouldReconnect: (ev) => !FINAL_PTY_CLOSES.includes(ev.code),
      },
    );

    this.resizeTimer = null;
    this.observer = new ResizeObserver(() => {
      clearTimeout(this.resizeTimer);
      this.resizeTimer = setTimeout(() => this.fitToPane(), 80);
    });
    this.observer.observe(host);
    // A tab in the background tells the daemon nobody looks: a busy slot is then read once a
    // second instead of at every spinner frame (docs/API.md, `visibility`).
    this.onVisibility = () => this.sendVisibility();
    document.addEventListener('visibilitychange', this.onVisibility);
    this.socket.start();
  }

  sendVisibility() {
    this.socket.send({ type: PtyMsg.VISIBILITY, hidden: document.hidden });
  }

  onMessage(msg) {
    switch (msg.type) {
      case PtyMsg.SCREEN:
        // First frame of every (re)attach, and again after this viewer lagged: start afresh.
        this.term.reset();
        if (msg.cols && msg.rows) this.applySlotSize(msg.cols, msg.rows);
        this.setStatus('live', this.readOnly ? 'live · read-only' : 'live');
        // xterm.js parses writes later but resizes at once: fit to the pane only once the
        // screen (and the scrollback before it) is in, at the slot's size.
        this.term.write(msg.data || '', () => {
          // A writable viewer makes the slot as large as its pane.
          this.lastSentSize = null;
          this.fitToPane();
        });
        break;
      case PtyMsg.DATA:
        this.term.write(msg.data || '');
        break;
      case PtyMsg.RESIZE:
        // After the output written before it, which was drawn at the old size.
        this.term.write('', () => this.applySlotSize(msg.cols, msg.rows));
        break;
      case PtyMsg.STATE:
        this.dispatchEvent(new CustomEvent('state', { detail: msg }));
        break;
      case PtyMsg.EXIT:
        this.setStatus('exited', exitLabel(msg));
        break;
      case PtyMsg.ERROR:
        this.dispatchEvent(new CustomEvent('error', { detail: msg.message }));
        break;
      default:
    }
  }

  onClose(ev, retry, delay) {
    if (retry) {
      this.setStatus('reconnecting', `disconnected; retrying in ${(delay / 1000).toFixed(1)}s`);
    } else if (ev.code === Close.EXITED) {
      if (this.status !== 'exited') this.setStatus('exited', 'exited');
    } else if (ev.code === Close.NOT_FOUND) {
      this.setStatus('gone', ev.reason || 'slot not running');
      this.showLastScreen();
    } else if (this.socket.stopped) {
      this.setStatus('gone', 'detached');
    } else {
      this.setStatus('gone', ev.reason || `closed (${ev.code})`);
    }
  }

  /** A slot that is not running cannot be attached, but its final screen can still be shown. */
  async showLastScreen() {
    if (!this.lastScreen) return;
    let screen;
    try {
      screen = await this.lastScreen();
    } catch {
      return; // never started, or its screen is gone: the status line says enough
    }
    if (this.status !== 'gone') return; // reattached meanwhile: the live screen wins
    this.term.reset();
    this.applySlotSize(screen.cols, screen.rows);
    this.term.write(screen.text);
    this.setStatus('gone', `${this.statusText} · last screen`);
  }

  /** The slot runs again (seen on /events): attach anew if the socket gave up. */
  slotStarted() {
    if (this.status === 'exited' || this.status === 'gone') {
      this.setStatus('connecting', 'attaching…');
      this.socket.restart();
    }
  }

  setReadOnly(readOnly) {
    if (readOnly === this.readOnly) return;
    this.readOnly = readOnly;
    this.term.options.disableStdin = readOnly;
    this.socket.restart();
  }

  sendInput(data) {
    if (this.readOnly) return;
    this.socket.send({ type: PtyMsg.INPUT, data });
  }

  applySlotSize(cols, rows) {
    this.slotSize = { cols, rows };
    if (this.term.cols !== cols || this.term.rows !== rows) this.term.resize(cols, rows);
    this.dispatchEvent(new CustomEvent('size', { detail: this.slotSize }));
  }

  /**
   * Proposes this pane's size to the slot; the daemon echoes `resize` with the size that holds.
   * `force`: the explicit "fit to this window", which resizes the slot even with other viewers.
   */
  fitToPane(force = false) {
    if (this.readOnly || !this.socket.open || this.status !== 'live') return;
    if (!force && PHONE.matches) return; // a phone renders the real size, scrolling in its box
    if (this.host.clientWidth < 20 || this.host.clientHeight < 20) return; // hidden tab
    const dims = this.fit.proposeDimensions();
    if (!dims || !Number.isFinite(dims.cols) || !Number.isFinite(dims.rows)) return;
    const cols = Math.max(20, dims.cols);
    const rows = Math.max(5, dims.rows);
    if (this.slotSize && this.slotSize.cols === cols && this.slotSize.rows === rows) return;
    if (!force && this.lastSentSize && this.lastSentSize.cols === cols && this.lastSentSize.rows === rows) return;
    this.lastSentSize = { cols, rows };
    this.socket.send(force ? { type: PtyMsg.RESIZE, cols, rows, force: true } : { type: PtyMsg.RESIZE, cols, rows });
  }

  /** A key from the on-screen key bar (phones have no Esc, Tab, arrows or Ctrl). */
  sendKey(name) {
    const app = this.term.modes.applicationCursorKeysMode;
    const arrow = (c) => (app ? `\x1bO${c}` : `\x1b[${c}`);
    const keys = {
      esc: '\x1b', tab: '\t', up: arrow('A'), down: arrow('B'), right: arrow('C'), left: arrow('D'),
      ctrlc: '\x03', enter: '\r',
    };
    if (keys[name]) this.sendInput(keys[name]);
  }

  setStatus(status, text) {
    this.status = status;
    this.statusText = text;
    this.dispatchEvent(new CustomEvent('status', { detail: { status, text } }));
  }

  focus() {
    this.term.focus();
  }

  /** The visible screen plus scrollback as plain text (used by tests and "copy all"). */
  bufferText() {
    const buf = this.term.buffer.active;
    const lines = [];
    for (let i = 0; i < buf.length; i += 1) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
    return lines.join('\n');
  }

  dispose() {
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.socket.stop();
    this.observer.disconnect();
    clearTimeout(this.resizeTimer);
    this.term.dispose();
    this.unmirror();
  }
}

function exitLabel(msg) {
  if (msg.signal) return `exited (${msg.signal})`;
  if (msg.code !== null && msg.code !== undefined) return `exited (code ${msg.code})`;
  return 'exited';
}

/**
 * The daemon answers terminal queries from its own emulator; if xterm.js answered too, the
 * program would get one reply per attached browser. Swallow every query xterm.js would answer.
 */
function swallowTerminalQueries(term) {
  const swallow = () => true;
  const p = term.parser;
  p.registerCsiHandler({ final: 'c' }, swallow); // DA1
  p.registerCsiHandler({ prefix: '>', final: 'c' }, swallow); // DA2
  p.registerCsiHandler({ prefix: '=', final: 'c' }, swallow); // DA3
  p.registerCsiHandler({ prefix: '>', final: 'q' }, swallow); // XTVERSION
  p.registerCsiHandler({ final: 'n' }, swallow); // DSR, cursor position report
  p.registerCsiHandler({ prefix: '?', final: 'n' }, swallow); // DEC DSR
  p.registerCsiHandler({ intermediates: '$', final: 'p' }, swallow); // DECRQM (ANSI)
  p.registerCsiHandler({ prefix: '?', intermediates: '$', final: 'p' }, swallow); // DECRQM (DEC)
  p.registerCsiHandler({ prefix: '?', final: 'u' }, swallow); // kitty keyboard flags query
  p.registerCsiHandler({ final: 't' }, (params) => [11, 13, 14, 15, 16, 18, 19, 20, 21].includes(params[0])); // XTWINOPS reports
  p.registerDcsHandler({ intermediates: '$', final: 'q' }, swallow); // DECRQSS
  p.registerDcsHandler({ intermediates: '+', final: 'q' }, swallow); // XTGETTCAP
  // OSC colour queries ("?" in place of a colour); colour *settings* still apply.
  const isQuery = (data) => data.split(';').some((part) => part === '?');
  for (const osc of [4, 10, 11, 12, 17, 19, 104]) p.registerOscHandler(osc, isQuery);
}
