// The History view in real headless Chromium against the real daemon (issue 19): the vendored
// asciinema player parses a recording of a real Claude Code run (a Bash permission dialog
// answered with `missiond confirm`), the timeline shows its states, dialog and answer, "Next
// dialog" and the speed control work, and a run the daemon records right here plays too.
//
//   cd web && MISSIOND_BIN=../target/debug/missiond node --test tests/history.test.mjs
//
// fixtures/claude-permission.cast is a copy of what missiond/tests/recordings.rs saves as
// target/recordings-e2e/claude-permission.cast (that one is used when it is newer than the
// daemon binary under test, as after `scripts/test`'s cargo test).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Daemon, waitFor, MISSIOND_BIN } from './daemon.mjs';

const WEB_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const FRESH = path.resolve(WEB_DIR, '..', 'target', 'recordings-e2e', 'claude-permission.cast');
// The recording the Rust e2e made with the daemon under test, not one left by an older build.
const freshIsCurrent = fs.existsSync(FRESH) && fs.statSync(FRESH).mtimeMs >= fs.statSync(MISSIOND_BIN).mtimeMs;
const FIXTURE = freshIsCurrent ? FRESH : path.join(WEB_DIR, 'tests', 'fixtures', 'claude-permission.cast');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'missiond-history-'));
const configPath = path.join(tmp, 'config.toml');
const token = crypto.randomBytes(24).toString('hex');
const stateDir = path.join(tmp, 'state');
const toml = (s) => JSON.stringify(s);

let daemon;
let browser;
let page;
const pageErrors = [];
const cspViolations = [];
const consoleLog = [];

const castText = fs.readFileSync(FIXTURE, 'utf8');
const castEvents = castText.split('\n').slice(1).filter((l) => l.trim()).map((l) => JSON.parse(l));
const castMarkers = castEvents.filter((e) => e[1] === 'm');
const castDuration = castEvents[castEvents.length - 1][0];

function step(name, fn) {
  it(name, async () => {
    try {
      await fn();
    } catch (err) {
      err.message += `\n--- page console ---\n${consoleLog.slice(-30).join('\n')}\n--- daemon log ---\n${(daemon?.log || '').split('\n').slice(-30).join('\n')}`;
      throw err;
    }
  });
}

const history = (fn, arg) => page.evaluate(fn, arg);
const playerTime = () => history(() => window.__missiond.history().player.getCurrentTime());
const playerText = () => page.locator('.history-player .ap-term, .history-player .ap-terminal').first().innerText();

async function openHistory(id) {
  await page.locator(`.slot[data-slot-id="${id}"] button`, { hasText: 'History' }).click();
  await page.locator('#history-dialog[open]').waitFor();
  await page.locator('.history-player .ap-player').waitFor();
}

describe('History view in Chromium', () => {
  before(async () => {
    // The real Claude Code run, as the daemon keeps it, for a slot that records nothing new.
    const dir = path.join(stateDir, 'missiond', 'recordings', 'cc');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '1.cast'), castText);
    fs.writeFileSync(configPath, `
[[slots]]
id = "cc"
command = "sleep"
args = ["600"]
cwd = ${toml(tmp)}
record = false

[[slots]]
id = "shell"
command = "bash"
args = ["--norc", "--noprofile", "-i"]
cwd = ${toml(tmp)}
profile = "shell"
cols = 80
rows = 24
env = { PS1 = "$ ", HISTFILE = "/dev/null" }
`);
    daemon = new Daemon({
      configPath,
      env: { MISSIOND_TOKEN: token, XDG_STATE_HOME: stateDir, CLAUDE_CONFIG_DIR: path.join(tmp, 'claude'), HOME: tmp },
    });
    await daemon.start();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    const context = await browser.newContext({ viewport: { width: 1500, height: 950 }, colorScheme: 'dark' });
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      consoleLog.push(`${msg.type()}: ${msg.text()}`);
      if (/Content.Security.Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  step('the fixture is a real Claude Code run with a dialog and an answer by the CLI', () => {
    assert.ok(castMarkers.some((m) => m[2].startsWith('dialog:')), 'a dialog marker');
    assert.ok(castMarkers.some((m) => /^answer:1 .* by cli$/.test(m[2])), 'an answer marker by the CLI');
    assert.match(JSON.parse(castText.split('\n')[0]).command, /claude/);
  });

  step('History lists the run and the asciinema player parses it, markers and all', async () => {
    await page.goto(`${daemon.url}/#token=${token}`);
    await page.locator('.slot[data-slot-id="cc"]').waitFor();
    await openHistory('cc');
    const runs = page.locator('.history-run');
    assert.equal(await runs.count(), 1);
    assert.match(await runs.first().innerText(), /Run 1/);
    // The player read the whole file: its duration is the last event's time.
    const duration = await waitFor('the player\'s duration', () => history(() => window.__missiond.history().player.getDuration()));
    assert.ok(Math.abs(duration - castDuration) < 0.01, `player duration ${duration}, last event ${castDuration}`);
    // The player's own progress bar shows the file's markers (all but one at the very end,
    // which it leaves out), labels as written: it parsed the dialog and the answer.
    const expected = castMarkers.filter((m) => m[0] < castDuration).map((m) => m[2]);
    const shown = await waitFor('the player\'s markers', async () => {
      const tips = await page.locator('.history-player .ap-marker-container .ap-tooltip').allTextContents();
      return tips.length === expected.length && tips;
    });
    assert.deepEqual(shown.map((t) => t.replace(/^[\d:]+ - /, '')), expected);
  });

  step('the timeline is coloured by state with ticks for the dialog and the answer', async () => {
    assert.ok(await page.locator('.history-strip .seg-confirming').count() >= 1);
    assert.ok(await page.locator('.history-strip .seg-idle').count() >= 1);
    const dialogs = castMarkers.filter((m) => m[2].startsWith('dialog:'));
    const answers = castMarkers.filter((m) => m[2].startsWith('answer:'));
    assert.equal(await page.locator('.history-strip .tick-dialog').count(), dialogs.length);
    assert.equal(await page.locator('.history-strip .tick-answer').count(), answers.length);
    const tickTime = Number(await page.locator('.history-strip .tick-answer').first().getAttribute('data-time'));
    assert.equal(tickTime, answers[0][0]);
    assert.match(await page.locator('.history-info').innerText(), /1 dialog\(s\), 1 answer\(s\)/);
  });

  step('"Next dialog" seeks to the dialog, which the player then shows', async () => {
    const dialog = castMarkers.find((m) => m[2].startsWith('dialog:'));
    await page.locator('#history-dialog button', { hasText: 'Next dialog' }).click();
    await waitFor('the seek to the dialog', async () => Math.abs((await playerTime()) - dialog[0]) < 0.05);
    const title = dialog[2].slice('dialog:'.length).split('|')[0];
    await waitFor('the dialog on the player\'s screen', async () => (await playerText()).includes(title));
  });

  step('a click on the answer tick seeks there; the end shows the final screen', async () => {
    const answer = castMarkers.find((m) => m[2].startsWith('answer:'));
    await page.locator('.history-strip .tick-answer').first().click();
    await waitFor('the seek to the answer', async () => Math.abs((await playerTime()) - answer[0]) < 0.05);
    await history((d) => window.__missiond.history().seek(d), castDuration);
    // The run ended with a kill: Claude Code's last words are how to resume the session.
    await waitFor('the final screen', async () => (await playerText()).includes('--resume'));
    // docs/history.png (RECORDINGS.md), at the dialog.
    const dialog = castMarkers.find((m) => m[2].startsWith('dialog:'));
    await history((d) => window.__missiond.history().seek(d), dialog[0] + 0.01);
    await waitFor('the dialog again', async () => Math.abs((await playerTime()) - dialog[0] - 0.01) < 0.05);
    await page.screenshot({ path: path.resolve(WEB_DIR, '..', 'docs', 'history.png') });
  });

  step('the speed control makes a player at that speed, at the same position', async () => {
    await history(() => window.__missiond.history().seek(3));
    await page.locator('.history-speed').selectOption('4');
    await waitFor('a new player at 4x', async () => (await history(() => window.__missiond.history().speed)) === 4);
    await waitFor('the position kept', async () => Math.abs((await playerTime()) - 3) < 0.05);
  });

  step('a run recorded by this daemon plays too', async () => {
    await page.locator('#history-dialog button', { hasText: 'Close' }).click();
    await waitFor('the shell prompt', async () => (await daemon.rest('GET', '/api/slots/shell/screen')).text.includes('$'));
    await daemon.rest('POST', '/api/slots/shell/input', { data: 'echo hello-$((6*7))-history\r' });
    await waitFor('the echo', async () => (await daemon.rest('GET', '/api/slots/shell/screen')).text.includes('hello-42-history'));
    // Flushed within a second while the run goes on.
    await waitFor('the recording on disk', async () => {
      const res = await fetch(`${daemon.url}/api/slots/shell/runs/1.cast`, { headers: { Authorization: `Bearer ${token}` } });
      return res.ok && (await res.text()).includes('hello-42-history');
    });
    await openHistory('shell');
    assert.match(await page.locator('.history-run').first().innerText(), /Run 1 \(recording\)/);
    const duration = await waitFor('the duration', () => history(() => window.__missiond.history().player.getDuration()));
    await history((d) => window.__missiond.history().seek(d), duration);
    await waitFor('the echo in the player', async () => (await playerText()).includes('hello-42-history'));
  });

  step('no page errors and no CSP violations', () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
  });
});
