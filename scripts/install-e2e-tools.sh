#!/usr/bin/env bash
# Installs the pinned Claude Code CLI used by the end-to-end tests into <repo>/.e2e-tools
# (git-ignored), so tests find it at .e2e-tools/node_modules/.bin/claude.
# Idempotent: returns at once when the pinned version is already installed.
set -euo pipefail

CLAUDE_CODE_VERSION="2.1.330"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="$repo/.e2e-tools"
bin="$prefix/node_modules/.bin/claude"
pkg_json="$prefix/node_modules/@anthropic-ai/claude-code/package.json"

installed_version() {
    [ -f "$pkg_json" ] || return 1
    node -e 'process.stdout.write(require(process.argv[1]).version)' "$pkg_json" 2>/dev/null
}

if [ -x "$bin" ] && [ "$(installed_version || true)" = "$CLAUDE_CODE_VERSION" ]; then
    echo "claude $CLAUDE_CODE_VERSION already installed: $bin"
    exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "error: npm is required (install Node.js 18+)" >&2; exit 1; }

mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"

if [ ! -x "$bin" ]; then
    echo "error: npm install finished but $bin is missing" >&2
    exit 1
fi
echo "installed claude $(installed_version): $bin"
