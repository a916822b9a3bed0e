// The viewer in real headless Chromium against the real daemon (issue 6's acceptance list).
//
//   cd web && npm ci && MISSIOND_BIN=../target/debug/missiond node --test tests/
//
// One daemon and one page for the whole story (attach, type, resize, answer a dialog, see a
// task appear, survive a daemon restart), plus fresh pages for the token checks.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Daemon, waitFor } from './daemon.mjs';

const WEB_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const FIXTURES = path.join(WEB_DIR, 'tests', 'fixtures');
const SCREENSHOT = path.resolve(WEB_DIR, '..', 'docs', 'viewer.png');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'missiond-viewer-'));
const claudeDir = path.join(tmp, 'claude');
const recordFile = path.join(tmp, 'dialog-input.bin');
const configPath = path.join(tmp, 'config.toml');
const token = crypto.randomBytes(24).toString('hex');
const daemonEnv = {
  MISSIOND_TOKEN: token,
  XDG_STATE_HOME: path.join(tmp, 'state'),
  CLAUDE_CONFIG_DIR: claudeDir,
  HOME: tmp,
};

let daemon;
let browser;
let context;
let page;
const requested = []; // every URL the main page asked for (HTTP and WebSocket)
const binaryFrom = new Set(); // WebSocket URLs the main page received binary frames on
const errorFrames = []; // `error` messages the main page received on any WebSocket
const pageErrors = [];
const cspViolations = [];
const consoleLog = []; // the page's console, shown when a step fails

/** it() whose failure message carries the page's console and the daemon's log. */
function step(name, fn) {
  it(name, async () => {
    try {
      await fn();
    } catch (err) {
      const tail = (text, n) => text.split('\n').slice(-n).join('\n');
      err.message += `\n--- page console (last 30) ---\n${consoleLog.slice(-30).join('\n')}`
        + `\n--- daemon log (last 40 lines) ---\n${tail(daemon?.log || '', 40)}`;
      throw err;
    }
  });
}

const toml = (s) => JSON.stringify(s); // a JSON string is a valid TOML basic string

function writeConfig() {
  fs.mkdirSync(path.join(claudeDir, 'tasks'), { recursive: true });
  fs.writeFileSync(configPath, `
[claude]
config_dir = ${toml(claudeDir)}

[[slots]]
id = "shell"
command = "bash"
args = ["--norc", "--noprofile", "-i"]
cwd = ${toml(tmp)}
profile = "shell"
cols = 100
rows = 30
env = { PS1 = "$ ", HISTFILE = "/dev/null" }

[[slots]]
id = "dialog"
command = "python3"
args = [${toml(path.join(FIXTURES, 'permission_dialog.py'))}, ${toml(recordFile)}]
cwd = ${toml(tmp)}
profile = "claude-code"
cols = 120
rows = 40
`);
}

const hook = (fn, arg) => page.evaluate(fn, arg);
const bufferLines = async (id) => ((await hook((i) => window.__missiond.bufferText(i), id)) || '').split('\n');

async function newPage() {
  const p = await context.newPage();
  p.on('pageerror', (err) => pageErrors.push(err.message));
  p.on('console', (msg) => {
    consoleLog.push(`${msg.type()}: ${msg.text()}`);
    if (/Content.Security.Policy/i.test(msg.text())) cspViolations.push(msg.text());
  });
  return p;
}

describe('viewer in Chromium', () => {
  before(async () => {
    writeConfig();
    daemon = new Daemon({ configPath, env: daemonEnv });
    await daemon.start();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1600, height: 950 }, colorScheme: 'dark' });
    // Browser notifications, granted and recorded (headless Chromium shows none).
    await context.addInitScript(() => {
      const shown = [];
      window.__notifications = shown;
      window.Notification = class FakeNotification {
        static permission = 'granted';
        static requestPermission() { return Promise.resolve('granted'); }
        constructor(title, options) { shown.push({ title, body: options?.body }); }
        close() {}
      };
    });
    // Record what the page sends on its WebSockets (devtools-injected, so CSP does not apply).
    await context.addInitScript(() => {
      const sent = [];
      window.__wsSent = sent;
      const send = WebSocket.prototype.send;
      WebSocket.prototype.send = function recordSend(data) {
        if (typeof data === 'string') sent.push(data);
        return send.call(this, data);
      };
    });
    page = await newPage();
    page.on('request', (req) => requested.push(req.url()));
    page.on('websocket', (ws) => {
      requested.push(ws.url());
      ws.on('framereceived', (f) => {
        if (typeof f.payload !== 'string') binaryFrom.add(ws.url());
        else if (f.payload.includes('"type":"error"')) errorFrames.push(f.payload);
      });
    });
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    if (process.env.KEEP_TMP) console.log(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  });

  step('refuses a wrong or missing token with a clear message', async () => {
    for (const suffix of ['/#token=not-the-token', '/']) {
      const p = await newPage();
      await p.goto(`${daemon.url}${suffix}`);
      const auth = p.locator('#auth');
      await auth.waitFor({ state: 'visible' });
      const text = await auth.innerText();
      assert.match(text, /missiond serve/);
      assert.match(text, /missiond token/);
      assert.equal(await p.locator('#app').isVisible(), false);
      await p.close();
    }
  });

  step('loads with the token, hides it from the address bar, and lists the configured slots', async () => {
    const res = await page.goto(`${daemon.url}/#token=${token}`);
    const csp = res.headers()['content-security-policy'] || '';
    assert.match(csp, /default-src 'self'/, 'the page is served with a Content-Security-Policy');
    assert.ok(!page.url().includes(token), `token still in the URL: ${page.url()}`);
    for (const id of ['shell', 'dialog']) {
      const row = page.locator(`.slot[data-slot-id="${id}"]`);
      await row.waitFor();
      assert.match(await row.locator('.badge').innerText(), /\S/);
    }
    assert.match(await page.locator('.slot[data-slot-id="shell"] .cmd').innerText(), /^bash --norc/);
    // The claude-code slot shows its dialog: "needs you", in the list and in the title.
    await page.locator('.slot[data-slot-id="dialog"] .badge', { hasText: 'needs you' }).waitFor();
    await waitFor('title badge', async () => /^\(1\) missiond$/.test(await page.title()));
    await page.locator('#conn.live').waitFor();
  });

  step('shows a new task file in the tasks panel without a reload', async () => {
    const list = path.join(claudeDir, 'tasks', 'viewer-list');
    fs.mkdirSync(list, { recursive: true });
    const task = (id, subject, status, blockedBy = []) => JSON.stringify({
      id, subject, description: `${subject}.`, activeForm: `Doing: ${subject}`, status, blocks: [], blockedBy,
    });
    fs.writeFileSync(path.join(list, '1.json'), task('1', 'Write the viewer tests', 'in_progress'));
    fs.writeFileSync(path.join(list, '2.json'), task('2', 'Take the screenshot', 'pending', ['1']));
    const first = page.locator('.task[data-task-id="1"] .task-subject');
    await first.waitFor({ timeout: 10000 });
    assert.equal(await first.innerText(), 'Write the viewer tests');
    const second = page.locator('.task[data-task-id="2"]');
    await second.waitFor();
    assert.match(await second.innerText(), /Take the screenshot/);
    assert.match(await second.locator('.task-blocked').innerText(), /blocked by #1/);
  });

  step('attaches to a bash slot and shows what the program prints for typed input', async () => {
    await page.locator('.slot[data-slot-id="shell"] .slot-open').click();
    await waitFor('shell pane live', () => hook((id) => window.__missiond.paneStatus(id) === 'live', 'shell'));
    await waitFor('bash prompt', async () => (await bufferLines('shell')).some((l) => l.startsWith('$')));
    await page.locator('.pane[data-slot-id="shell"] .term-host').click();
    await page.keyboard.type('echo hi-from-browser');
    await page.keyboard.press('Enter');
    await waitFor('echo output in the xterm buffer',
      async () => (await bufferLines('shell')).some((l) => l.trim() === 'hi-from-browser'));
    // The output came as binary frames (?binary=1), not JSON.
    const pty = [...binaryFrom].filter((u) => new URL(u).pathname === '/pty/shell');
    assert.ok(pty.length > 0 && pty.every((u) => new URL(u).searchParams.get('binary') === '1'),
      `binary frames from: ${[...binaryFrom].join(', ')}`);
  });

  step('tells the daemon when its tab goes to the background and comes back', async () => {
    const visibility = () => page.evaluate(() => window.__wsSent
      .map((t) => { try { return JSON.parse(t); } catch { return null; } })
      .filter((m) => m?.type === 'visibility'));
    assert.deepEqual(await visibility(), [], 'a visible tab says nothing');
    // Headless Chromium never hides the page: play the browser's part.
    const setHidden = (hidden) => page.evaluate((h) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
    await setHidden(true);
    await waitFor('visibility hidden sent', async () => (await visibility()).length === 1);
    await setHidden(false);
    await waitFor('visibility shown sent', async () => (await visibility()).length === 2);
    assert.deepEqual((await visibility()).map((m) => m.hidden), [true, false]);
    // The daemon took both: a message it refused comes back as an `error`, sent before the
    // echo of what is typed next.
    await page.locator('.pane[data-slot-id="shell"] .term-host').click();
    await page.keyboard.type('echo back-in-view');
    await page.keyboard.press('Enter');
    await waitFor('echo after the visibility messages',
      async () => (await bufferLines('shell')).some((l) => l.trim() === 'back-in-view'));
    assert.deepEqual(errorFrames, [], 'the daemon refused a message');
  });

  step('resizes the slot to the page after a window resize', async () => {
    const before = await hook((id) => window.__missiond.termSize(id), 'shell');
    await page.setViewportSize({ width: 1250, height: 760 });
    const size = await waitFor('terminal to take the new pane size', async () => {
      const s = await hook((id) => window.__missiond.termSize(id), 'shell');
      return s.cols !== before.cols && s.rows !== before.rows ? s : null;
    });
    await waitFor('slot to take the same size', async () => {
      const slot = await daemon.rest('GET', '/api/slots/shell');
      return slot.cols === size.cols && slot.rows === size.rows;
    });
    await page.locator('.pane[data-slot-id="shell"] .term-host').click();
    await page.keyboard.type('stty size');
    await page.keyboard.press('Enter');
    const expected = `${size.rows} ${size.cols}`;
    await waitFor(`"stty size" to print ${expected}`, async () => {
      const screen = await daemon.rest('GET', '/api/slots/shell/screen');
      return screen.text.split('\n').some((l) => l.trim() === expected);
    });
    await page.setViewportSize({ width: 1600, height: 950 });
  });

  step('a read-only viewer sends no keys; a writable one does again', async () => {
    const pane = page.locator('.pane[data-slot-id="shell"]');
    const roButton = pane.locator('.pane-head button[aria-pressed]');
    await roButton.click();
    assert.equal(await roButton.getAttribute('aria-pressed'), 'true');
    await waitFor('read-only attach', () => requested.some((u) => u.includes('/pty/shell') && u.includes('mode=ro'))
      && hook((id) => window.__missiond.paneStatus(id) === 'live', 'shell'));
    await pane.locator('.term-host').click();
    await page.keyboard.type('ro-typed ');
    await roButton.click();
    assert.equal(await roButton.getAttribute('aria-pressed'), 'false');
    await waitFor('writable attach', () => hook((id) => window.__missiond.paneStatus(id) === 'live', 'shell'));
    await pane.locator('.term-host').click();
    await page.keyboard.type('echo rw-typed');
    await page.keyboard.press('Enter');
    const lines = await waitFor('writable output', async () => {
      const l = await bufferLines('shell');
      return l.some((x) => x.trim() === 'rw-typed') ? l : null;
    });
    // Input reaches the PTY in order: read-only keys would stand before the command.
    assert.ok(lines.some((l) => l.trimEnd() === '$ echo rw-typed'), lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes('ro-typed')), lines.join('\n'));
  });

  step('shows a confirming slot\'s dialog and answers it with the clicked option', async () => {
    const card = page.locator('#attention .dialog-card[data-slot-id="dialog"]');
    await card.waitFor();
    assert.match(await card.locator('.dialog-question').innerText(), /Do you want to proceed\?/);
    assert.match(await card.locator('.dialog-body').innerText(), /touch \/tmp\/ccproj\/flag\.txt/);
    const labels = await card.locator('.btn.option .opt-label').allInnerTexts();
    assert.ok(labels.length >= 2, `options: ${labels}`);
    assert.equal(labels[0], 'Yes');
    assert.equal(labels[labels.length - 1], 'No');
    // The refusing option (meaning "no") is marked, and it is the only one.
    assert.deepEqual(await card.locator('.btn.option.refuse .opt-label').allInnerTexts(), ['No']);

    await page.locator('.slot[data-slot-id="shell"] .badge', { hasText: 'idle' }).waitFor();
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });

    const before = fs.existsSync(recordFile) ? fs.readFileSync(recordFile).length : 0;
    await card.locator('.btn.option[data-option="2"]').click();
    const keys = await waitFor('the script to receive the answer', () => {
      const got = fs.existsSync(recordFile) ? fs.readFileSync(recordFile).subarray(before).toString('latin1') : '';
      return /2|\x1b[[O]B[\s\S]*\r/.test(got) ? got : null;
    });
    // Option 2 is one below the selected option 1: either the digit or one arrow down then Enter.
    if (!keys.includes('2')) assert.equal(keys.match(/\x1b[[O]B/g).length, 1, JSON.stringify(keys));
    await page.locator('.slot[data-slot-id="dialog"] .badge', { hasText: 'needs you' }).waitFor({ state: 'detached' });
    await card.waitFor({ state: 'detached' });
    await waitFor('title without badge', async () => (await page.title()) === 'missiond');
  });

  step('sends a prompt to a Claude Code slot from its pane', async () => {
    await page.locator('.slot[data-slot-id="dialog"] .slot-open').click();
    const pane = page.locator('.pane[data-slot-id="dialog"]');
    await waitFor('dialog pane live', () => hook((id) => window.__missiond.paneStatus(id) === 'live', 'dialog'));
    await waitFor('the slot idle', async () => (await daemon.rest('GET', '/api/slots/dialog')).state === 'idle');
    const before = fs.readFileSync(recordFile).length;
    const input = pane.locator('.prompt-input');
    await input.fill('hello from the page');
    await input.press('Enter');
    // The program enabled bracketed paste, so the daemon pastes the text and then presses Enter.
    await waitFor('the prompt to reach the program', () => fs.readFileSync(recordFile).subarray(before).toString()
      .includes('\x1b[200~hello from the page\x1b[201~\r'));
    await waitFor('the prompt box to empty', async () => (await input.inputValue()) === '');
    await pane.getByRole('button', { name: 'Close dialog' }).click();
    await pane.waitFor({ state: 'detached' });
    assert.equal(await page.locator('.tab[aria-selected="true"]').innerText(), 'shell');
  });

  step('leaves terminal queries to the daemon: the page sends no replies', async () => {
    const mark = await hook(() => window.__wsSent.length);
    await page.locator('.pane[data-slot-id="shell"] .term-host').click();
    // DA1, DA2, XTVERSION, DSR, CPR, OSC 10/11 colour queries, kitty keyboard, DECRQM.
    await page.keyboard.type(String.raw`printf '\033[c\033[>c\033[>0q\033[5n\033[6n\033]10;?\007\033]11;?\007\033[?u\033[?2026$p'; echo; echo queries-done`);
    await page.keyboard.press('Enter');
    await waitFor('the queries to be printed', async () => (await bufferLines('shell')).some((l) => l.trim() === 'queries-done'));
    const inputs = (await hook((m) => window.__wsSent.slice(m), mark))
      .map((frame) => JSON.parse(frame))
      .filter((msg) => msg.type === 'input');
    assert.ok(inputs.length > 0, 'the typed command went out as input');
    const replies = inputs.filter((msg) => msg.data.includes('\x1b'));
    assert.deepEqual(replies, [], 'xterm.js answered a terminal query');
  });

  step('a pane opened late scrolls back into what the slot printed before', async () => {
    await daemon.rest('POST', '/api/slots', {
      id: 'history', command: 'sh', cols: 80, rows: 24,
      args: ['-c', "seq 1 300 | sed 's/^/hist-/'; printf 'ready> '; read x"],
    });
    await waitFor('the slot to print everything',
      async () => ((await daemon.rest('GET', '/api/slots/history/screen')).text || '').includes('ready>'));
    await page.locator('.slot[data-slot-id="history"] .slot-open').click();
    await waitFor('history pane live', () => hook((id) => window.__missiond.paneStatus(id) === 'live', 'history'));
    const lines = (await bufferLines('history')).map((l) => l.trim());
    const expected = Array.from({ length: 300 }, (_, i) => `hist-${i + 1}`);
    assert.deepEqual(lines.filter((l) => l.startsWith('hist-')), expected,
      'the pane holds every line once, the early ones in its scrollback');
    const pane = page.locator('.pane[data-slot-id="history"]');
    await pane.getByRole('button', { name: 'Close history' }).click();
    await pane.waitFor({ state: 'detached' });
    await daemon.rest('DELETE', '/api/slots/history');
    await page.locator('.slot[data-slot-id="history"]').waitFor({ state: 'detached' });
  });

  step('launches, kills, starts, restarts and removes a slot from the page', async () => {
    await page.locator('#launch-btn').click();
    const form = page.locator('#launch-form');
    await form.locator('[name=id]').fill('made-here');
    await form.locator('[name=command]').fill('bash');
    await form.locator('[name=args]').fill('--norc --noprofile -i');
    await form.locator('[name=cwd]').fill(tmp);
    await form.locator('[name=cols]').fill('90');
    await form.locator('[name=rows]').fill('20');
    await form.locator('[name=profile]').selectOption('shell');
    await form.locator('button[type=submit]').click();
    const row = page.locator('.slot[data-slot-id="made-here"]');
    await row.waitFor();
    assert.equal(await row.locator('.cmd').innerText(), 'bash --norc --noprofile -i');
    const spec = await daemon.rest('GET', '/api/slots/made-here');
    assert.deepEqual([spec.command, spec.args, spec.cwd], ['bash', ['--norc', '--noprofile', '-i'], tmp]);
    await waitFor('the new slot\'s pane', () => hook((id) => window.__missiond.paneStatus(id) === 'live', 'made-here'));

    // Side by side: both open terminals on screen at once.
    await page.locator('#layout-btn').click();
    assert.ok(await page.locator('.pane[data-slot-id="shell"]').isVisible());
    assert.ok(await page.locator('.pane[data-slot-id="made-here"]').isVisible());
    await page.locator('#layout-btn').click();
    assert.equal(await page.locator('.pane[data-slot-id="shell"]').isVisible(), false);

    await row.getByRole('button', { name: 'Kill', exact: true }).click();
    await row.locator('.badge', { hasText: 'exited' }).waitFor();
    await waitFor('the pane to see the exit', () => hook((id) => ['exited', 'gone'].includes(window.__missiond.paneStatus(id)), 'made-here'));
    // Reopened while exited: no live attach, but the final screen is shown.
    await page.locator('.pane[data-slot-id="made-here"]').getByRole('button', { name: 'Close made-here' }).click();
    await row.locator('.slot-open').click();
    await waitFor('the last screen', async () => await hook((id) => window.__missiond.paneStatus(id), 'made-here') === 'gone'
      && (await bufferLines('made-here')).some((l) => l.includes('bash')));
    assert.match(await page.locator('.pane[data-slot-id="made-here"] .pane-conn').innerText(), /last screen/);
    await row.getByRole('button', { name: 'Start', exact: true }).click();
    await waitFor('the pane to reattach after start', () => hook((id) => window.__missiond.paneStatus(id) === 'live', 'made-here'));
    const { pid } = await daemon.rest('GET', '/api/slots/made-here');
    await row.getByRole('button', { name: 'Restart', exact: true }).click();
    await waitFor('a new process', async () => {
      const slot = await daemon.rest('GET', '/api/slots/made-here');
      return slot.status === 'running' && slot.pid !== pid;
    });
    await waitFor('the pane live after restart', () => hook((id) => window.__missiond.paneStatus(id) === 'live', 'made-here'));

    const remove = row.locator('button[title="Remove made-here"]');
    await remove.click();
    assert.equal(await remove.innerText(), 'Really remove?');
    await remove.click();
    await row.waitFor({ state: 'detached' });
    await page.locator('.pane[data-slot-id="made-here"]').waitFor({ state: 'detached' });
    const res = await fetch(`${daemon.url}/api/slots/made-here`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(res.status, 404);
  });

  step('reconnects after the daemon restarts and shows the live screen again', async () => {
    const port = daemon.port;
    await daemon.stop();
    await waitFor('page to notice the daemon is gone',
      () => hook((id) => window.__missiond.paneStatus(id) !== 'live' && !window.__missiond.eventsOpen(), 'shell'));
    daemon = new Daemon({ configPath, env: daemonEnv, listen: `127.0.0.1:${port}` });
    await daemon.start();
    await waitFor('events stream back', () => hook(() => window.__missiond.eventsOpen()), 30000);
    await waitFor('shell pane live again', () => hook((id) => window.__missiond.paneStatus(id) === 'live', 'shell'), 30000);
    await waitFor('fresh bash prompt', async () => (await bufferLines('shell')).some((l) => l.startsWith('$')));
    // The new screen replaced the old one: nothing from before the restart is shown twice.
    const lines = await bufferLines('shell');
    assert.equal(lines.filter((l) => l.trim() === 'hi-from-browser').length, 0, lines.join('\n'));
    await page.locator('.pane[data-slot-id="shell"] .term-host').click();
    await page.keyboard.type('echo back-again');
    await page.keyboard.press('Enter');
    await waitFor('output after the restart',
      async () => (await bufferLines('shell')).filter((l) => l.trim() === 'back-again').length === 1);
    await page.locator('.slot[data-slot-id="dialog"] .badge', { hasText: 'needs you' }).waitFor();
    // It had been answered before the restart: it starting to wait again is worth a notification.
    await waitFor('a notification for the dialog slot',
      () => hook(() => window.__notifications.some((n) => n.title === 'dialog needs you')));
  });

  step('a daemon restarted with another token sends the page to the token message', async () => {
    const port = daemon.port;
    await daemon.stop();
    daemon = new Daemon({ configPath, env: { ...daemonEnv, MISSIOND_TOKEN: `${token}-new` }, listen: `127.0.0.1:${port}` });
    await daemon.start();
    const auth = page.locator('#auth');
    await auth.waitFor({ state: 'visible', timeout: 30000 });
    assert.match(await auth.innerText(), /no longer accepts/);
    assert.equal(await page.locator('.pane').count(), 0, 'terminals are closed');
  });

  step('talks to no host but the daemon, breaks no CSP rule and throws no error', () => {
    const origin = new URL(daemon.url);
    assert.ok(requested.length > 0);
    for (const url of requested) {
      if (url.startsWith('data:')) continue;
      const u = new URL(url);
      assert.ok(['http:', 'ws:'].includes(u.protocol), url);
      assert.equal(u.host, origin.host, `request to another host: ${url}`);
    }
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(pageErrors, []);
  });
});
