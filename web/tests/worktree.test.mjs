// A worktree slot's card in real headless Chromium against the real daemon: the branch and the
// diff stat, live as files change, and the diff one click away.
//
//   cd web && MISSIOND_BIN=../target/debug/missiond node --test tests/worktree.test.mjs

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';
import { Daemon, waitFor } from './daemon.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'missiond-worktree-'));
const repo = path.join(tmp, 'app');
const configPath = path.join(tmp, 'config.toml');
const token = crypto.randomBytes(24).toString('hex');
const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.invalid',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.invalid',
  GIT_CONFIG_GLOBAL: '/dev/null',
};
const git = (...args) => execFileSync('git', ['-C', repo, ...args], { env: gitEnv }).toString();

let daemon;
let browser;
let page;

/** The worktree of slot `id` under the configured root (grouped by repository). */
function worktreeOf(id) {
  const root = path.join(tmp, 'worktrees');
  return path.join(root, fs.readdirSync(root)[0], id);
}

/** A destructive button: the first click arms it (relabelled), the second acts. */
async function clickTwice(button, armedLabel) {
  await button.click();
  await waitFor(`"${armedLabel}"`, async () => (await button.innerText()) === armedLabel);
  await button.click();
}

describe('worktree slot card', () => {
  before(async () => {
    fs.mkdirSync(repo, { recursive: true });
    git('init', '-q', '-b', 'main');
    fs.writeFileSync(path.join(repo, 'readme.txt'), 'hello\n');
    git('add', '.');
    git('commit', '-qm', 'initial');
    fs.writeFileSync(configPath, `[server]\nworktree_root = ${JSON.stringify(path.join(tmp, 'worktrees'))}\n`);
    daemon = new Daemon({
      configPath,
      env: { MISSIOND_TOKEN: token, XDG_STATE_HOME: path.join(tmp, 'state'), CLAUDE_CONFIG_DIR: path.join(tmp, 'claude'), HOME: tmp },
    });
    await daemon.start();
    await daemon.rest('POST', '/api/slots', { id: 'wt', command: 'sleep', args: ['600'], cwd: repo, worktree: {} });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  });

  after(async () => {
    await browser?.close();
    await daemon?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('shows the branch and diff stat, follows edits, and opens the diff in one click', async () => {
    await page.goto(`${daemon.url}/#token=${token}`);
    const card = page.locator('.slot[data-slot-id="wt"] .slot-worktree');
    await card.waitFor();
    assert.match(await card.innerText(), /missiond\/wt/);
    assert.match(await card.innerText(), /\+0\s+−0/);

    // An edit in the worktree reaches the card through /events, without a reload.
    const worktree = path.join(tmp, 'worktrees', fs.readdirSync(path.join(tmp, 'worktrees'))[0], 'wt');
    fs.writeFileSync(path.join(worktree, 'readme.txt'), 'hello\nfrom the agent\nand more\n');
    await waitFor('the new diff stat on the card', async () => /\+2\s+−0/.test(await card.innerText()));

    await card.click();
    const diff = page.locator('.slot[data-slot-id="wt"] .slot-diff');
    await waitFor('the diff under the card', async () => (await diff.innerText()).includes('+from the agent'));
    assert.match(await diff.innerText(), /--- a\/readme\.txt/);
    assert.equal(await card.getAttribute('aria-expanded'), 'true');
  });

  it('Remove on unsaved work asks; "Keep worktree" removes the slot and keeps the work', async () => {
    const slot = page.locator('.slot[data-slot-id="wt"]');
    const worktree = worktreeOf('wt');
    await clickTwice(slot.locator('.slot-actions button', { hasText: 'Remove' }), 'Really remove?');
    const ask = slot.locator('.slot-unsaved');
    await ask.waitFor();
    // The daemon's words: what would be lost and where.
    assert.match(await ask.innerText(), /1 uncommitted file\(s\)/);
    assert.match(await ask.innerText(), /missiond\/wt/);
    assert.equal((await daemon.request('GET', '/api/slots/wt')).status, 200, 'the slot is still there');
    // Cancel leaves everything as it was.
    await ask.locator('button', { hasText: 'Cancel' }).click();
    await waitFor('the question gone', async () => !(await ask.isVisible()));
    assert.equal((await daemon.request('GET', '/api/slots/wt')).status, 200);

    await clickTwice(slot.locator('.slot-actions button', { hasText: 'Remove' }), 'Really remove?');
    await ask.locator('button', { hasText: 'Keep worktree' }).click();
    await waitFor('the card gone', async () => (await slot.count()) === 0);
    assert.equal((await daemon.request('GET', '/api/slots/wt')).status, 404);
    assert.equal(fs.readFileSync(path.join(worktree, 'readme.txt'), 'utf8'), 'hello\nfrom the agent\nand more\n');
    assert.match(git('branch', '--list', 'missiond/wt'), /missiond\/wt/);
  });

  it('"Discard work" takes a second click, then deletes the worktree and its branch', async () => {
    assert.equal((await daemon.request('POST', '/api/slots', { id: 'wt2', command: 'sleep', args: ['600'], cwd: repo, worktree: {} })).status, 201);
    const slot = page.locator('.slot[data-slot-id="wt2"]');
    await slot.waitFor();
    const worktree = worktreeOf('wt2');
    fs.writeFileSync(path.join(worktree, 'notes.txt'), 'not committed\n');
    await waitFor('the dirty worktree on the card', async () => (await daemon.request('GET', '/api/slots/wt2')).json.worktree?.dirtyFiles === 1);
    await clickTwice(slot.locator('.slot-actions button', { hasText: 'Remove' }), 'Really remove?');
    const ask = slot.locator('.slot-unsaved');
    await ask.waitFor();
    // Found by its role, not its label: the first click relabels it.
    const discard = ask.locator('button.danger');
    assert.equal(await discard.innerText(), 'Discard work');
    await discard.click();
    assert.equal(await discard.innerText(), 'Really discard?');
    assert.ok(fs.existsSync(worktree), 'one click discards nothing');
    await discard.click();
    await waitFor('the card gone', async () => (await slot.count()) === 0);
    assert.ok(!fs.existsSync(worktree), 'the worktree is deleted');
    assert.equal(git('branch', '--list', 'missiond/wt2').trim(), '');
  });
});
