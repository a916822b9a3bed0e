//! The numbers and names a client branches on: WebSocket close codes of `/pty` (and the
//! streams) and the `code` of REST errors (`{"error": {"code", "message"}}`).
//!
//! Clients (the CLI, `web/js/protocol.js`, tests) match these; docs/API.md lists them.

/// `/pty` close codes (4000-4999 are the application's own range).
pub mod close {
    /// The URL names no slot (`/pty`, `/pty/`, `/pty/a/b`, a bad slot id, a bad query).
    pub const INVALID_URL: u16 = 4000;
    /// No slot of that id.
    pub const NOT_FOUND: u16 = 4001;
    /// The slot exists but a viewer cannot attach (no run, too many viewers, read-only rules).
    pub const CANNOT_ATTACH: u16 = 4002;
    /// The slot's program exited; the exit message came first.
    pub const EXITED: u16 = 4003;
    /// The daemon is being upgraded (`missiond upgrade`): reconnect, the slot runs on.
    pub const RESTARTING: u16 = 1012;
    /// The viewer stopped reading for `[server] stuck_viewer_secs` (policy violation).
    pub const STUCK: u16 = 1008;
}
