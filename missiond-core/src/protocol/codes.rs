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

/// The `code` of a REST error body, `{"error": {"code", "message"}}` (docs/API.md).
pub mod error {
    /// A malformed id or query parameter.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The body is not the JSON the route takes.
    pub const BAD_JSON: &str = "bad_json";
    /// A slot spec the daemon cannot run (size, cwd, env).
    pub const INVALID: &str = "invalid";
    /// No token, or the wrong one.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// The read-only token cannot do this.
    pub const READ_ONLY: &str = "read_only";
    /// A browser page from another origin.
    pub const ORIGIN_FORBIDDEN: &str = "origin_forbidden";
    /// A request for a host name the daemon does not answer to.
    pub const HOST_FORBIDDEN: &str = "host_forbidden";
    /// No slot of that id.
    pub const SLOT_NOT_FOUND: &str = "slot_not_found";
    /// No such route or file.
    pub const NOT_FOUND: &str = "not_found";
    /// Recordings are turned off, or that run is not kept.
    pub const NO_RECORDINGS: &str = "no_recordings";
    /// A wait, prompt or confirm ran out of time.
    pub const TIMEOUT: &str = "timeout";
    /// A slot of that id exists.
    pub const SLOT_EXISTS: &str = "slot_exists";
    /// The slot has no running program.
    pub const NOT_RUNNING: &str = "not_running";
    /// The slot's program has not started yet.
    pub const NOT_STARTED: &str = "not_started";
    /// The slot is not in a state for this (prompt while busy, confirm with no dialog, an answer not verified on screen).
    pub const CONFLICT: &str = "conflict";
    /// Removing the slot would lose work in its worktree.
    pub const WORKTREE_UNSAVED: &str = "worktree_unsaved";
    /// The slot has no worktree.
    pub const NOT_A_WORKTREE: &str = "not_a_worktree";
    /// git refused (the message is git's).
    pub const GIT_FAILED: &str = "git_failed";
    /// The slot's screen went away while reading it.
    pub const GONE: &str = "gone";
    /// The body is over the size limit.
    pub const TOO_LARGE: &str = "too_large";
    /// The program could not be executed.
    pub const SPAWN_FAILED: &str = "spawn_failed";
    /// The new binary cannot take over; the daemon serves on.
    pub const UPGRADE_FAILED: &str = "upgrade_failed";
    /// The program is not reading its input.
    pub const INPUT_FAILED: &str = "input_failed";
    /// The slot has its maximum of viewers.
    pub const TOO_MANY_VIEWERS: &str = "too_many_viewers";
    /// The audit trail cannot be written: the action was not done.
    pub const AUDIT_FAILED: &str = "audit_failed";
    /// The audit trail cannot be read.
    pub const AUDIT_UNREADABLE: &str = "audit_unreadable";
    /// A recording cannot be read.
    pub const UNREADABLE: &str = "unreadable";
    /// The daemon is upgrading itself: retry after `Retry-After` seconds.
    pub const UPGRADING: &str = "upgrading";
    /// The program did not exit after SIGKILL.
    pub const KILL_TIMEOUT: &str = "kill_timeout";
    /// Anything else; the message says what.
    pub const INTERNAL: &str = "internal";
}
