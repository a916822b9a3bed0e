//! Shared helpers for missiond integration tests.
//!
//! - [`daemon`]: the real `missiond serve` on 127.0.0.1, the CLI against it, /proc inspection.
//! - [`claude_env`], [`stand_in`]: the real Claude Code against a scripted Messages API.
//! - [`receiver`]: a real HTTP receiver for notifications.

pub mod claude_env;
#[allow(dead_code)] // each test binary uses a different part of this helper
pub mod daemon;
#[allow(dead_code)]
pub mod receiver;
pub mod stand_in;
