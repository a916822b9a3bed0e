// Test helper: runs the real missiond binary on 127.0.0.1 with a temporary config, state dir and
// Claude Code directory, and reads its listening address from stdout.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const MISSIOND_BIN = process.env.MISSIOND_BIN || path.resolve(WEB_DIR, '../target/debug/missiond');

const LISTENING = /missiond listening on (http:\/\/[^\s/]+)/;

export class Daemon {
  /**
   * @param {object} o  configPath, listen ('127.0.0.1:0' or a fixed port), env (merged over ours)
   */
  constructor({ configPath, listen = '127.0.0.1:0', env = {} }) {
    this.configPath = configPath;
    this.listen = listen;
    this.env = env;
    this.log = '';
    this.proc = null;
    this.url = null;
  }

  /** Starts the daemon and resolves with its base URL once it prints that it is listening. */
  async start(timeoutMs = 30000) {
    const proc = spawn(MISSIOND_BIN, ['serve', '--listen', this.listen, '--config', this.configPath], {
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    // Settles on exit, or on a spawn error (then start() reports it): never an unhandled rejection.
    this.exited = new Promise((resolve) => { proc.once('exit', resolve); proc.once('error', resolve); });
    proc.stderr.on('data', (d) => { this.log += d.toString(); });
    this.url = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`daemon did not print its address in ${timeoutMs} ms\n${this.log}`)), timeoutMs);
      proc.stdout.on('data', (d) => {
        out += d.toString();
        this.log += d.toString();
        const m = LISTENING.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      proc.on('error', (err) => { clearTimeout(timer); reject(err); });
      proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`daemon exited (${code ?? signal}) before listening\n${this.log}`));
      });
    });
    return this.url;
  }

  get port() {
    return Number(new URL(this.url).port);
  }

  /**
   * A REST call with the daemon's full token (`MISSIOND_TOKEN` of its env).
   * @returns {Promise<{status: number, json: any, text: string}>} the status, the JSON of a success (null when empty) and the body
   */
  async request(method, route, body) {
    const res = await fetch(`${this.url}${route}`, {
      method,
      headers: { Authorization: `Bearer ${this.env.MISSIOND_TOKEN}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, json: res.ok && text ? JSON.parse(text) : null, text };
  }

  /** {@link request}, resolving with the JSON answer; an error status throws with the daemon's words. */
  async rest(method, route, body) {
    const { status, json, text } = await this.request(method, route, body);
    if (status >= 400) throw new Error(`${method} ${route}: ${status} ${text}`);
    return json;
  }

  /** SIGTERM, then wait for the process to end (SIGKILL if it takes more than 15 s). */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Polls `fn` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitFor(what, fn, timeoutMs = 30000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
