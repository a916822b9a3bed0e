// Types for tsc only (not served): the package's own typings for the vendored addon-unicode11.mjs.
export * from '@xterm/addon-unicode11';
