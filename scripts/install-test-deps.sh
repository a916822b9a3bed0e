#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, Node/npm and Python:
#   - the pinned Claude Code CLI (npm, into .e2e-tools/), for the end-to-end tests;
#   - the viewer's test dependencies (npm ci in web/): playwright-core for the browser tests,
#     typescript for the viewer's type check;
#   - Debian's chromium (browser tests) and jq (examples), via apt-get; needs root, skipped
#     when present;
#   - Python's websockets package, for the example scripts;
#   - rustfmt and clippy (rustup components), for the format and lint checks.
# Idempotent: a second run only checks.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$repo/scripts/install-e2e-tools.sh"

if [ ! -d "$repo/web/node_modules/playwright-core" ] || [ ! -d "$repo/web/node_modules/typescript" ]; then
    (cd "$repo/web" && npm ci --no-audit --no-fund --loglevel=error)
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing ${missing[*]} from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "error: the tests need ${missing[*]}: run 'sudo apt-get install ${missing[*]}'" >&2
        exit 1
    fi
fi

if ! python3 -c 'import websockets.sync.client' 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check 'websockets>=13,<18'
fi

# rustfmt and clippy keep the code formatted and lint-free (scripts/test checks both).
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy || {
        echo "error: the tests need rustfmt and clippy: run 'rustup component add rustfmt clippy'" >&2
        exit 1
    }
fi
