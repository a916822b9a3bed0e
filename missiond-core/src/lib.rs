//! missiond-core: everything missiond does except argument parsing.
//!
//! Events flow one way: pty bytes -> [`screen`] -> [`semantic`] -> broadcast -> [`server`].
//!
//! - [`config`]: slot and server settings, token and state directory.
//! - [`pty`]: spawn a program in a pseudo-terminal, read pump, write, resize, signals, exit.
//! - [`procfs`]: `/proc/<pid>/stat`: alive, parent, session, CPU and memory.
//! - [`screen`]: the vt100 emulator of a slot, snapshots, answers to terminal queries.
//! - [`semantic`]: reads a screen into states (idle, thinking, confirming, ...), rules as data.
//! - [`tasks`]: Claude Code task files: watcher, model, diff.
//! - [`supervisor`]: the set of slots, their lifecycle and restart policy.
//! - [`protocol`]: every wire message type, shared by server and clients.
//! - [`server`]: HTTP, WebSocket routes, auth.
//! - [`audit`]: the audit trail of every action on a slot (`audit.jsonl`).
//! - [`notify`]: notifications out to `[[notify]]` receivers.
//! - [`metrics`]: counters and the `/metrics` scrape.
//! - [`recording`]: every run kept as an asciicast, with markers; disk limits.
//! - [`worktree`]: a slot's own git worktree: creation, stats, diff, safe removal.
//! - [`claude_args`]: what missiond adds to Claude Code's command line (session id, hooks).
//! - [`registry`]: slots created at run time, persisted so they outlive the daemon.

pub mod audit;
pub mod claude_args;
pub mod config;
pub mod metrics;
pub mod notify;
pub mod procfs;
pub mod protocol;
pub mod pty;
pub mod recording;
pub mod registry;
pub mod screen;
pub mod semantic;
pub mod server;
pub mod supervisor;
pub mod tasks;
pub mod worktree;

/// The version clients and `/health` report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
