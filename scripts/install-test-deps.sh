#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, Node/npm and Python:
#   - the pinned Claude Code CLI (npm, into .e2e-tools/), for the end-to-end tests;
#   - the viewer's test dependencies (npm ci in web/), for the browser tests;
#   - Debian's chromium, for the browser tests (apt-get; needs root, skipped when present).
# Idempotent: a second run only checks.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$repo/scripts/install-e2e-tools.sh"

if [ ! -d "$repo/web/node_modules/playwright-core" ]; then
    (cd "$repo/web" && npm ci --no-audit --no-fund --loglevel=error)
fi

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing Debian's chromium for the browser tests"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "error: the browser tests need chromium: run 'sudo apt-get install chromium'" >&2
        exit 1
    fi
fi
