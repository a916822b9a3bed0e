// @ts-check
// A JSON WebSocket (plus binary frames of raw bytes, if asked for) that reconnects with exponential backoff (plus jitter) when it closes, until
// stopped or until `shouldReconnect(closeEvent)` says no (e.g. "slot exited" close codes).

const MIN_DELAY_MS = 300;
const MAX_DELAY_MS = 8000;

/**
 * @typedef {object} SocketHandlers
 * @property {(msg: any) => void} onMessage  a JSON text frame, parsed
 * @property {() => void} [onOpen]
 * @property {(event: CloseEvent, willRetry: boolean, delayMs: number) => void} [onClose]
 * @property {(event: CloseEvent) => boolean} [shouldReconnect]  default: always
 * @property {(bytes: Uint8Array) => void} [onBytes]  a binary frame
 */

export class ReconnectingSocket {
  /**
   * @param {() => string} url  called before every attempt (the URL may change, e.g. read-only)
   * @param {SocketHandlers} handlers  binary frames are ignored without `onBytes`
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.ws) this.connect();
  }

  /** Closes now and reconnects at once (e.g. with a different URL). */
  restart() {
    this.attempt = 0;
    this.drop();
    this.start();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    this.drop();
  }

  send(msg) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close();
    }
  }

  connect() {
    const ws = new WebSocket(this.url());
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.handlers.onOpen?.();
    };
    ws.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) {
        this.attempt = 0;
        this.handlers.onBytes?.(new Uint8Array(ev.data));
        return;
      }
      if (typeof ev.data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      // A frame arrived: the daemon is really there, so the next drop starts the backoff afresh.
      this.attempt = 0;
      this.handlers.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const retry = !this.stopped && (this.handlers.shouldReconnect?.(ev) ?? true);
      const delay = retry ? this.nextDelay() : 0;
      this.handlers.onClose?.(ev, retry, delay);
      if (retry) this.timer = setTimeout(() => { this.timer = null; if (!this.stopped) this.connect(); }, delay);
    };
  }

  nextDelay() {
    const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }
}
