#!/bin/sh
# Copies xterm.js, its addons and the asciinema player from node_modules into vendor/, which is committed and embedded
# into the daemon: the viewer never loads code from a CDN. Run after changing their versions in
# package.json:   npm ci && sh vendor.sh
set -eu
cd "$(dirname "$0")"
[ -d node_modules/@xterm/xterm ] || npm ci --no-audit --no-fund

copy() { # package, dest dir, files...
    pkg=$1; dest=$2; shift 2
    rm -rf "vendor/$dest"
    mkdir -p "vendor/$dest"
    for f in "$@"; do
        # Drop the source-map comment: the maps are not vendored.
        sed '/^\/\/# sourceMappingURL=/d' "node_modules/$pkg/$f" > "vendor/$dest/$(basename "$f")"
    done
    cp "node_modules/$pkg/LICENSE" "vendor/$dest/LICENSE"
    version=$(node -p "require('./node_modules/$pkg/package.json').version")
    echo "$pkg@$version" > "vendor/$dest/VERSION"
}

types() { # package, dest dir, module name: a declaration next to the .mjs that `tsc` reads
    # instead of the minified code (the package's own typings; not served, see tsconfig.json)
    printf "// Types for tsc only (not served): the package's own typings for the vendored %s.\nexport * from '%s';\n" \
        "$3.mjs" "$1" > "vendor/$2/$3.d.mts"
}

copy @xterm/xterm xterm lib/xterm.mjs css/xterm.css
# CSP patches. The page runs under `style-src 'self'`, which refuses inline styles, and xterm.js's
# DOM renderer uses two kinds:
# - setAttribute("style", ...) to colour true-colour cells: style.cssText (CSSOM, allowed) does
#   the same;
# - <style> elements whose text it sets from JS: they become inert <xterm-style> elements, whose
#   text js/csp-styles.js copies into a constructable stylesheet (CSSOM, allowed).
# Fail loudly if a new xterm.js version no longer has this code, rather than ship grey screens.
node -e '
const fs = require("fs");
const file = "vendor/xterm/xterm.mjs";
let src = fs.readFileSync(file, "utf8");
const addStyle = /_addStyle\((\w+),(\w+)\)\{\1\.setAttribute\("style",`\$\{\1\.getAttribute\("style"\)\|\|""\}\$\{\2\};`\)\}/;
if (!addStyle.test(src)) { console.error("vendor.sh: xterm.mjs _addStyle not found; review the CSP patch"); process.exit(1); }
src = src.replace(addStyle, (m, el, st) => `_addStyle(${el},${st}){${el}.style.cssText+=${st}+";"}`);
const styles = src.split(`createElement("style")`).length - 1;
if (styles !== 3) { console.error(`vendor.sh: expected 3 <style> elements in xterm.mjs, found ${styles}; review the CSP patch`); process.exit(1); }
src = src.replaceAll(`createElement("style")`, `createElement("xterm-style")`);
if (/setAttribute\("style"/.test(src)) { console.error("vendor.sh: xterm.mjs sets a style attribute; review the CSP patch"); process.exit(1); }
fs.writeFileSync(file, src);
'
copy @xterm/addon-fit addon-fit lib/addon-fit.mjs
copy @xterm/addon-unicode11 addon-unicode11 lib/addon-unicode11.mjs
types @xterm/xterm xterm xterm
types @xterm/addon-fit addon-fit addon-fit
types @xterm/addon-unicode11 addon-unicode11 addon-unicode11
# The History view's player (a classic script defining window.AsciinemaPlayer; its terminal is
# WebAssembly, which is why the CSP allows 'wasm-unsafe-eval').
copy asciinema-player asciinema-player dist/bundle/asciinema-player.min.js dist/bundle/asciinema-player.css
echo "vendored into $(pwd)/vendor:"
cat vendor/*/VERSION
