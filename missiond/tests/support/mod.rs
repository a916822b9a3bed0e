//! Shared helpers for missiond integration tests.
//!
//! - [`daemon`]: the real `missiond serve` on 127.0.0.1, the CLI against it, /proc inspection.
//! - [`claude_env`], [`stand_in`]: the real Claude Code against a scripted Messages API;
//!   [`pty_claude`]: that Claude Code in a bare PTY, recorded byte for byte.
//! - [`receiver`]: a real HTTP receiver for notifications.
//! - [`ws_log`]: a daemon WebSocket recorded frame by frame.

pub mod claude_env;
#[allow(dead_code)] // each test binary uses a different part of this helper
pub mod daemon;
pub mod pty_claude;
#[allow(dead_code)]
pub mod receiver;
pub mod stand_in;
#[allow(dead_code)]
pub mod ws_log;
