// Types for tsc only (not served): the package's own typings for the vendored addon-fit.mjs.
export * from '@xterm/addon-fit';
