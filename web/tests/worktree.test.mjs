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
    const res = await fetch(`${daemon.url}/api/slots`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: 'wt', command: 'sleep', args: ['600'], cwd: repo, worktree: {} }),
    });
    assert.equal(res.status, 201, await res.text());
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
});
