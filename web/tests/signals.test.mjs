// Claude Code's own signals on a slot card, in real headless Chromium against the real daemon:
// cost and context from the status line (and the total over all slots), and the drift warning
// when the screen and the hooks disagree. The slot runs a stand-in for Claude Code that draws
// a busy spinner and reports through the real `missiond statusline` and `missiond hook`
// (the real CLI is covered by missiond/tests/claude_signals.rs).
//
//   cd web && MISSIOND_BIN=../target/debug/missiond node --test tests/signals.test.mjs

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { chromium } from 'playwright-core';
import { Daemon, waitFor, MISSIOND_BIN } from './daemon.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'missiond-signals-'));
const configPath = path.join(tmp, 'config.toml');
const fake = path.join(tmp, 'fake-claude');
const token = crypto.randomBytes(24).toString('hex');

// Reports usage, draws a spinner (the screen says busy), then says the turn stopped (the hooks
// say idle): drift after a few seconds.
const FAKE = `#!/bin/sh
[ "$1" = --version ] && { echo '9.9.9 (Claude Code)'; exit 0; }
RULE=────────────────────────────────────────
printf '{"model":{"id":"claude-fake"},"cost":{"total_cost_usd":0.25},"context_window":{"used_percentage":40}}' | "$FAKE_MISSIOND" statusline > /dev/null
printf '✶ Pondering…\\n\\n%s\\n❯ \\n%s\\n' "$RULE" "$RULE"
printf '{"hook_event_name":"Stop"}' | "$FAKE_MISSIOND" hook
exec sleep 600
`;

let daemon;
let browser;
let page;

describe('signals on the slot card', () => {
  before(async () => {
    fs.writeFileSync(fake, FAKE, { mode: 0o755 });
    fs.writeFileSync(configPath, `
[[slots]]
id = "cc"
command = ${JSON.stringify(fake)}
cwd = ${JSON.stringify(tmp)}
profile = "claude-code"
hooks = true
env = { FAKE_MISSIOND = ${JSON.stringify(MISSIOND_BIN)} }
`);
    daemon = new Daemon({
      configPath,
      env: { MISSIOND_TOKEN: token, XDG_STATE_HOME: path.join(tmp, 'state'), CLAUDE_CONFIG_DIR: path.join(tmp, 'claude'), HOME: tmp },
    });
    await daemon.start();
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

  it('shows cost, context and model, the total, and the drift warning', async () => {
    await page.goto(`${daemon.url}/#token=${token}`);
    const usage = page.locator('.slot[data-slot-id="cc"] .slot-usage');
    await waitFor('the usage on the card', async () => (await usage.isVisible()) && /\$0\.25/.test(await usage.innerText()));
    assert.match(await usage.innerText(), /40% context/);
    assert.match(await usage.innerText(), /claude-fake/);
    assert.equal(await page.locator('#slot-cost').innerText(), 'total $0.25');

    const drift = page.locator('.slot[data-slot-id="cc"] .slot-drift');
    await waitFor('the drift warning on the card', async () => drift.isVisible(), 30000);
    assert.match(await drift.innerText(), /states may be wrong for Claude Code 9\.9\.9: update the rules/);
    assert.match(await drift.getAttribute('title'), /screen says thinking, Claude Code's hooks say idle/);
  });
});
