// Types for tsc only (not served): the package's own typings for the vendored xterm.mjs.
export * from '@xterm/xterm';
