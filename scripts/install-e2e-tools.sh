#!/usr/bin/env bash
# Installs the Claude Code releases the end-to-end tests run on, each into its own prefix
# (git-ignored):
#   - the pinned release into <repo>/.e2e-tools (tests find it at .e2e-tools/node_modules/.bin/claude);
#   - every other release of the matrix into <repo>/.e2e-tools/claude-<version>/.
# The matrix is RELEASES in missiond/tests/support/claude_env.rs; keep the two lists equal.
# Idempotent: a release already installed at its version is only checked.
set -euo pipefail

CLAUDE_CODE_VERSION="2.1.330"
MATRIX=("2.1.332" "2.1.200")
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

command -v npm >/dev/null 2>&1 || { echo "error: npm is required (install Node.js 18+)" >&2; exit 1; }

# install_release VERSION PREFIX
install_release() {
    local version="$1" prefix="$2"
    local bin="$prefix/node_modules/.bin/claude"
    local pkg_json="$prefix/node_modules/@anthropic-ai/claude-code/package.json"
    local have=""
    if [ -f "$pkg_json" ]; then
        have="$(node -e 'process.stdout.write(require(process.argv[1]).version)' "$pkg_json" 2>/dev/null || true)"
    fi
    if [ -x "$bin" ] && [ "$have" = "$version" ]; then
        echo "claude $version already installed: $bin"
        return 0
    fi
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$version"
    if [ ! -x "$bin" ]; then
        echo "error: npm install of claude $version finished but $bin is missing" >&2
        exit 1
    fi
    echo "installed claude $version: $bin"
}

install_release "$CLAUDE_CODE_VERSION" "$repo/.e2e-tools"
for version in "${MATRIX[@]}"; do
    install_release "$version" "$repo/.e2e-tools/claude-$version"
done
