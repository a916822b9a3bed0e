// @ts-check
// xterm.js's DOM renderer sizes and colours its rows with <style> elements whose text it sets
// from JS, which the daemon's Content-Security-Policy (`style-src 'self'`) refuses. vendor.sh
// turns those elements into inert <xterm-style> elements; this copies their text into a
// constructable stylesheet, which CSP does not restrict.

const TAG = 'XTERM-STYLE';

/** Watches `container` (before xterm opens in it); returns a function that stops and cleans up. */
export function mirrorInlineStyles(container) {
  const sheet = new CSSStyleSheet();
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  const sync = () => {
    const text = [...container.querySelectorAll('xterm-style')].map((s) => s.textContent).join('\n');
    sheet.replaceSync(text);
  };
  const touchesStyle = (node) => node && (node.nodeName === TAG || node.parentNode?.nodeName === TAG);
  const observer = new MutationObserver((records) => {
    // Rows change all the time; only rebuild when a style element or its text changed.
    if (records.some((r) => touchesStyle(r.target) || [...r.addedNodes].some(touchesStyle))) sync();
  });
  observer.observe(container, { subtree: true, childList: true, characterData: true });
  sync();
  return () => {
    observer.disconnect();
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
  };
}
