// The viewer on a phone (issue 15), in real headless Chromium with a 390x844 viewport and touch
// emulation, against the real daemon:
//
//   cd web && npm ci && MISSIOND_BIN=../target/debug/missiond node --test tests/phone.test.mjs
//
// One column with the "needs you" inbox first, nothing wider than the viewport, option buttons
// at least 44 px tall, answering a dialog by tapping (and the audit trail naming who did), a
// terminal that scrolls inside its own box at the slot's real size (the phone does not shrink
// the slot), a key bar, the web app manifest and its icons. Screenshots go to docs/.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { Daemon, waitFor, MISSIOND_BIN } from './daemon.mjs';

const WEB_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const FIXTURES = path.join(WEB_DIR, 'tests', 'fixtures');
const DOCS = path.resolve(WEB_DIR, '..', 'docs');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const PHONE = { width: 390, height: 844 };
const PHONE_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'missiond-phone-'));
const claudeDir = path.join(tmp, 'claude');
const recordFile = path.join(tmp, 'dialog-input.bin');
const configPath = path.join(tmp, 'config.toml');
const token = crypto.randomBytes(24).toString('hex');
const toml = (s) => JSON.stringify(s);

let daemon;
let browser;
let phone;
let page;
const pageErrors = [];

/** Elements that stick out of the viewport (ignoring content clipped by a scrolling box). */
function overflowing(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const clipped = (el) => {
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (['auto', 'scroll', 'hidden', 'clip'].includes(s.overflowX)) return true;
      }
      return false;
    };
    const out = [];
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || clipped(el)) continue;
      if (r.right > width + 0.5 || r.left < -0.5 || r.width > width + 0.5) {
        out.push(`${el.tagName.toLowerCase()}.${el.className} [${Math.round(r.left)}, ${Math.round(r.right)}]`);
      }
    }
    return { width, scrollWidth: document.documentElement.scrollWidth, out };
  });
}

describe('viewer on a phone', () => {
  before(async () => {
    const list = path.join(claudeDir, 'tasks', 'phone-list');
    fs.mkdirSync(list, { recursive: true });
    const task = (id, subject, status) => JSON.stringify({
      id, subject, description: `${subject}.`, activeForm: subject, status, blocks: [], blockedBy: [],
    });
    fs.writeFileSync(path.join(list, '1.json'), task('1', 'Answer the dialog from the phone', 'in_progress'));
    fs.writeFileSync(path.join(list, '2.json'), task('2', 'Check the audit trail', 'pending'));
    fs.writeFileSync(configPath, `
[claude]
config_dir = ${toml(claudeDir)}

[[slots]]
id = "shell"
command = "bash"
args = ["--norc", "--noprofile", "-i"]
cwd = ${toml(tmp)}
profile = "shell"
cols = 120
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
    daemon = new Daemon({
      configPath,
      env: { MISSIOND_TOKEN: token, XDG_STATE_HOME: path.join(tmp, 'state'), CLAUDE_CONFIG_DIR: claudeDir, HOME: tmp },
    });
    await daemon.start();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    phone = await browser.newContext({
      viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2, userAgent: PHONE_UA, colorScheme: 'dark',
    });
    page = await phone.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    if (process.env.KEEP_TMP) console.log(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('shows the "needs you" inbox first, in one column, nothing wider than the screen', async () => {
    await page.goto(`${daemon.url}/#token=${token}`);
    const card = page.locator('#attention .dialog-card[data-slot-id="dialog"]');
    await card.waitFor({ timeout: 30000 });
    await page.locator('.task[data-task-id="1"]').waitFor();
    const top = async (sel) => (await page.locator(sel).first().boundingBox()).y;
    const inbox = await top('#attention');
    const slots = await top('#slot-list');
    const tasks = await top('.tasks');
    assert.ok(inbox < slots && slots < tasks, `order: inbox ${inbox}, slots ${slots}, tasks ${tasks}`);
    // One column: the slot list spans the screen.
    const list = await page.locator('#slot-list').boundingBox();
    assert.ok(list.width > PHONE.width * 0.85, `slot list is ${list.width} px wide`);
    const o = await overflowing(page);
    assert.equal(o.scrollWidth, o.width, `the page scrolls sideways: ${JSON.stringify(o)}`);
    assert.deepEqual(o.out, [], 'elements wider than the viewport');
    for (const b of await card.locator('.btn.option').all()) {
      const box = await b.boundingBox();
      assert.ok(box.height >= 44, `option button ${await b.innerText()} is ${box.height} px tall`);
      assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, 'option button inside the screen');
    }
    await page.screenshot({ path: path.join(DOCS, 'viewer-phone.png') });
  });

  it('answers a dialog by tapping, and the audit trail says who answered what', async () => {
    const before = fs.existsSync(recordFile) ? fs.readFileSync(recordFile).length : 0;
    await page.locator('#attention .btn.option[data-option="1"]').tap();
    await waitFor('the program to get the answer', () => {
      const got = fs.existsSync(recordFile) ? fs.readFileSync(recordFile).subarray(before).toString('latin1') : '';
      return got.includes('\r') || got.includes('1');
    });
    await waitFor('the dialog slot to leave confirming', async () => {
      const slot = (await daemon.rest('GET', '/api/slots')).find((s) => s.id === 'dialog');
      return slot.state !== 'confirming';
    });
    const entries = await daemon.rest('GET', '/api/audit?slot=dialog');
    const answer = entries.find((e) => e.action === 'confirm');
    assert.ok(answer, JSON.stringify(entries));
    assert.equal(answer.actor.client, 'viewer');
    assert.equal(answer.actor.token, 'full');
    assert.equal(answer.actor.userAgent, PHONE_UA);
    assert.match(answer.actor.remote, /^127\.0\.0\.1:\d+$/);
    assert.equal(answer.option.n, 1);
    assert.equal(answer.option.label, 'Yes');
    assert.match(answer.dialog.question, /Do you want to proceed\?/);
    // `missiond audit` says the same to a person at a shell.
    const table = execFileSync(MISSIOND_BIN, ['audit', '--slot', 'dialog'], {
      env: { ...process.env, MISSIOND_URL: daemon.url, MISSIOND_TOKEN: token, XDG_STATE_HOME: path.join(tmp, 'state') },
    }).toString();
    assert.match(table, /confirm\s+viewer 127\.0\.0\.1:\d+\s+1\. Yes \(yes\) to "Bash command: touch/, table);
  });

  it('opens a terminal that scrolls inside its box at the real size, with a key bar', async () => {
    await page.locator('.slot[data-slot-id="shell"] .slot-open').tap();
    await waitFor('shell pane live', () => page.evaluate(() => window.__missiond.paneStatus('shell') === 'live'));
    const host = page.locator('#pane-shell .term-host');
    const metrics = await host.evaluate((el) => ({
      width: el.getBoundingClientRect().width, scrollWidth: el.scrollWidth, clientWidth: el.clientWidth,
    }));
    assert.ok(metrics.width <= PHONE.width, `terminal box ${metrics.width} px`);
    assert.ok(metrics.scrollWidth > metrics.clientWidth, `the 120-column terminal scrolls in its box: ${JSON.stringify(metrics)}`);
    // The phone did not shrink the slot: it renders (and the slot keeps) 120x30.
    assert.deepEqual(await page.evaluate(() => window.__missiond.termSize('shell')), { cols: 120, rows: 30 });
    const slot = (await daemon.rest('GET', '/api/slots')).find((s) => s.id === 'shell');
    assert.deepEqual([slot.cols, slot.rows], [120, 30]);
    const o = await overflowing(page);
    assert.equal(o.scrollWidth, o.width, `the page scrolls sideways: ${JSON.stringify(o)}`);
    assert.deepEqual(o.out, []);

    // The key bar: type with the on-screen keyboard, then Ctrl-C and Enter from the bar.
    const keys = page.locator('#pane-shell .keybar .btn.key');
    assert.deepEqual(await keys.allInnerTexts(), ['Esc', 'Tab', '←', '↑', '↓', '→', 'Ctrl-C', 'Enter']);
    for (const k of await keys.all()) {
      const box = await k.boundingBox();
      assert.ok(box.height >= 44, `key ${await k.innerText()} is ${box.height} px tall`);
      assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, `key ${await k.innerText()} is off screen`);
    }
    await daemon.rest('POST', '/api/slots/shell/input', { data: 'echo from-the-phone' });
    await page.locator('#pane-shell .btn.key[data-key="enter"]').tap();
    await waitFor('the command to run', async () => {
      const text = await page.evaluate(() => window.__missiond.bufferText('shell'));
      return /\nfrom-the-phone/.test(text);
    });
    await daemon.rest('POST', '/api/slots/shell/input', { data: 'sleep 30' });
    await page.locator('#pane-shell .btn.key[data-key="enter"]').tap();
    await page.locator('#pane-shell .btn.key[data-key="ctrlc"]').tap();
    await waitFor('Ctrl-C to interrupt sleep', async () => {
      const text = await page.evaluate(() => window.__missiond.bufferText('shell'));
      return /sleep 30\s*\n\^C/.test(text);
    });
    await page.evaluate(() => document.getElementById('pane-shell').scrollIntoView());
    await page.screenshot({ path: path.join(DOCS, 'viewer-phone-terminal.png') });
  });

  it("shows a slot's history of answers in its pane", async () => {
    await page.locator('.slot[data-slot-id="dialog"] .slot-open').tap();
    await page.locator('#pane-dialog .history summary').tap();
    const item = page.locator('#pane-dialog .history-item').first();
    await item.waitFor();
    const text = await item.innerText();
    assert.match(text, /1\. Yes by viewer 127\.0\.0\.1:\d+/, text);
    assert.match(text, /Bash command: touch/, text);
  });

  it('can be added to a home screen: a manifest with icons', async () => {
    const href = await page.locator('link[rel="manifest"]').getAttribute('href');
    const res = await fetch(new URL(href, `${daemon.url}/`));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /application\/manifest\+json/);
    const manifest = await res.json();
    assert.equal(manifest.display, 'standalone');
    const sizes = manifest.icons.map((i) => i.sizes);
    assert.ok(sizes.includes('192x192') && sizes.includes('512x512'), JSON.stringify(sizes));
    for (const icon of manifest.icons) {
      const r = await fetch(new URL(icon.src, `${daemon.url}/`));
      assert.equal(r.status, 200, icon.src);
      assert.equal(r.headers.get('content-type'), icon.type);
    }
    assert.deepEqual(pageErrors, []);
  });

  it('a desktop viewer joining does not resize the slot until it asks to fit', async () => {
    const desk = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const dp = await desk.newPage();
    await dp.goto(`${daemon.url}/#token=${token}`);
    await dp.locator('.slot[data-slot-id="shell"] .slot-open').click();
    await waitFor('desktop pane live', () => dp.evaluate(() => window.__missiond.paneStatus('shell') === 'live'));
    // Its proposed size is refused (the phone is watching): it renders the real size.
    await waitFor('the desktop renders 120x30', async () => {
      const size = await dp.evaluate(() => window.__missiond.termSize('shell'));
      return size.cols === 120 && size.rows === 30;
    });
    let slot = (await daemon.rest('GET', '/api/slots')).find((s) => s.id === 'shell');
    assert.deepEqual([slot.cols, slot.rows], [120, 30]);
    // "Fit": the explicit action resizes the slot, and the phone follows.
    await dp.locator('#pane-shell .btn', { hasText: 'Fit' }).click();
    slot = await waitFor('the slot to take the desktop size', async () => {
      const s = (await daemon.rest('GET', '/api/slots')).find((x) => x.id === 'shell');
      return s.cols !== 120 ? s : null;
    });
    const deskSize = await waitFor('the desktop to render the fitted size', async () => {
      const size = await dp.evaluate(() => window.__missiond.termSize('shell'));
      return size.cols === slot.cols ? size : null;
    });
    assert.equal(deskSize.rows, slot.rows);
    assert.ok(slot.rows > 30, `fit to a 900 px tall window gave ${slot.rows} rows`);
    await waitFor('the phone to render the new size', async () => {
      const size = await page.evaluate(() => window.__missiond.termSize('shell'));
      return size.cols === slot.cols && size.rows === slot.rows;
    });
    await desk.close();
  });
});
