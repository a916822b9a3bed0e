// @ts-check
// The access token: arrives in the URL fragment (`#token=...`, never sent to a server by the
// browser), is kept in sessionStorage for this tab, and is removed from the address bar so it
// does not end up in bookmarks, screenshots or the history.

const KEY = 'missiond.token';

/** Reads the token from the fragment (and strips it) or from sessionStorage; null if none. */
export function takeToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const fromHash = params.get('token');
  if (fromHash) {
    sessionStorage.setItem(KEY, fromHash);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
    return fromHash;
  }
  return sessionStorage.getItem(KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}
