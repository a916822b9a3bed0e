// @ts-check
// REST client for the daemon's /api: JSON in and out, `Authorization: Bearer`, and errors from
// `{"error": {"code", "message"}}` turned into ApiError.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export class Api {
  constructor(token) {
    this.token = token;
  }

  async request(method, path, body, { text: asText = false } = {}) {
    // X-Missiond-Client names the viewer in the daemon's audit trail.
    const headers = { Authorization: `Bearer ${this.token}`, 'X-Missiond-Client': 'viewer' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (err) {
      throw new ApiError(0, 'unreachable', `daemon unreachable: ${err.message}`);
    }
    const text = await res.text();
    if (asText && res.ok) return text;
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text for the error message
    }
    if (!res.ok) {
      const info = json && json.error ? json.error : {};
      throw new ApiError(res.status, info.code || `http_${res.status}`, info.message || text || res.statusText);
    }
    return json;
  }

  slots() { return this.request('GET', '/api/slots'); }
  launch(spec) { return this.request('POST', '/api/slots', spec); }
  start(id) { return this.request('POST', `/api/slots/${enc(id)}/start`); }
  kill(id) { return this.request('POST', `/api/slots/${enc(id)}/kill`); }
  restart(id) { return this.request('POST', `/api/slots/${enc(id)}/restart`); }
  /**
   * Removes a slot; a worktree slot holding unsaved work is refused (`worktree_unsaved`)
   * unless `worktree` says what to do with it.
   * @param {string} id
   * @param {import('./protocol.js').WorktreeRemoval} [worktree]
   */
  remove(id, worktree) {
    return this.request('DELETE', `/api/slots/${enc(id)}${worktree ? `?worktree=${worktree}` : ''}`);
  }
  screen(id, format = 'text') { return this.request('GET', `/api/slots/${enc(id)}/screen?format=${format}`); }
  prompt(id, text) { return this.request('POST', `/api/slots/${enc(id)}/prompt`, { text }); }
  /**
   * `answer`: an option number, or a meaning (`'yes'`, `'always'`, `'no'`: `Meaning` in protocol.js).
   * @param {string} id
   * @param {number | import('./protocol.js').Meaning} answer
   */
  confirm(id, answer) {
    const body = typeof answer === 'number' ? { option: answer } : { answer };
    return this.request('POST', `/api/slots/${enc(id)}/confirm`, body);
  }
  audit(id, limit = 200) { return this.request('GET', `/api/audit?slot=${enc(id)}&limit=${limit}`); }
  runs(id) { return this.request('GET', `/api/slots/${enc(id)}/runs`); }
  cast(id, run) { return this.request('GET', `/api/slots/${enc(id)}/runs/${run}.cast`, undefined, { text: true }); }
  diff(id) { return this.request('GET', `/api/slots/${enc(id)}/diff`, undefined, { text: true }); }
}

const enc = encodeURIComponent;

/** ws(s)://host/path?token=... for the daemon this page came from. */
export function socketUrl(path, token, params = {}) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('token', token);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}
