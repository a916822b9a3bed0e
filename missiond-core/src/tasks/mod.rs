//! Claude Code task files: watcher, model, diff, sessions.
//!
//! Claude Code keeps each task list as a folder `<claude dir>/tasks/<list id>/` with one
//! `<n>.json` file per task (older versions: `<claude dir>/todos/<session>-agent-<agent>.json`,
//! an array), and each live process as `<claude dir>/sessions/<pid>.json`. The [`TaskHub`] scans
//! them once, then follows changes through inotify and broadcasts what changed as
//! [`TaskEvent`]s: the `/tasks` WebSocket stream. `docs/TASKS.md` describes the events.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use missiond_core::tasks::{TaskHub, SlotResolver};
//! struct NoSlots;
//! impl SlotResolver for NoSlots {
//!     fn slot_for_pid(&self, _pid: u32) -> Option<String> { None }
//! }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = missiond_core::tasks::default_claude_dir().ok_or("no home")?;
//! let hub = TaskHub::start(dir, Arc::new(NoSlots))?;
//! let (overview, mut events) = hub.subscribe_with_overview();
//! println!("{} lists", overview.total_sessions);
//! # Ok(()) }
//! ```
//!
//! Modules: `files` (paths and parsing), `model` (state, diff, activity), `watch` (the thread),
//! `procs` (pid liveness, slot lookup through parent processes), `transcripts` (the cwd of a
//! session whose session file is gone, from its transcript).
//!
//! Guarantees: no polling of files (inotify only; a timer runs only while a retry, an activity
//! expiry or a live-process check is pending); an unchanged file is never read again; a file
//! that does not parse keeps its last good content, is re-read after 100, 200 and 400 ms, and is
//! then reported once with `tracing::warn!`; it never counts as removed.

mod diff;
mod files;
mod model;
mod procs;
mod transcripts;
mod watch;

pub use crate::protocol::tasks::{SessionTasks, TaskEvent, TasksOverview};

use model::{Dirty, Model};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Tells the hub which supervised slot a Claude Code process belongs to.
///
/// Called with the hub's lock held (from its watcher thread and from [`TaskHub::overview`] and
/// [`TaskHub::slot_lists`]): it must be quick and must not call back into the [`TaskHub`].
/// When it answers `None` for a pid, the hub asks again for that pid's parent processes (a few
/// levels), so a slot whose command wraps `claude` in a shell still matches.
pub trait SlotResolver: Send + Sync + 'static {
    fn slot_for_pid(&self, pid: u32) -> Option<String>;

    /// The slot whose Claude Code runs the session `session_id`, when a slot knows its session
    /// (asked first: no guessing from process trees when the id is known).
    fn slot_for_session(&self, _session_id: &str) -> Option<String> {
        None
    }
}

/// A resolver for hubs that supervise nothing.
pub struct NoSlots;

impl SlotResolver for NoSlots {
    fn slot_for_pid(&self, _pid: u32) -> Option<String> {
        None
    }
}

/// `<claude dir>/sessions/<pid>.json` says the session is busy (`"status":"busy"`) or idle.
/// Sent when a session file appears with a status or its status changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    pub pid: u32,
    pub session_id: String,
    pub busy: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TasksError {
    #[error("cannot start the task file watcher: {0}")]
    Watch(#[from] notify::Error),
    #[error("cannot start the task watcher thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Tuning knobs; the defaults are what the daemon uses.
#[derive(Debug, Clone)]
pub struct TaskHubOptions {
    /// Events this close together are handled as one change.
    pub debounce: Duration,
    /// A list with no session file is active while its files changed this recently.
    pub active_window: Duration,
    /// Capacity of the event broadcast; a slower receiver gets `Lagged` and should re-fetch
    /// the overview.
    pub channel_capacity: usize,
}

impl Default for TaskHubOptions {
    fn default() -> Self {
        TaskHubOptions {
            debounce: watch::DEFAULT_DEBOUNCE,
            active_window: Duration::from_secs(5 * 60),
            channel_capacity: 4096,
        }
    }
}

/// `$CLAUDE_CONFIG_DIR`, else `~/.claude`; `None` without either.
pub fn default_claude_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".claude"))
}

/// State shared by the hub handles and the watcher thread.
pub(crate) struct Shared {
    pub model: Mutex<Model>,
    pub events: broadcast::Sender<TaskEvent>,
    pub statuses: broadcast::Sender<SessionStatus>,
}

struct Inner {
    shared: Arc<Shared>,
    root: PathBuf,
    control: mpsc::Sender<watch::Msg>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The thread owns the notify watcher; it drops it on the way out.
        let _ = self.control.send(watch::Msg::Shutdown);
    }
}

/// The task watcher and its broadcast. Cheap to clone; the watcher stops with the last clone.
#[derive(Clone)]
pub struct TaskHub {
    inner: Arc<Inner>,
}

impl TaskHub {
    /// Scans `claude_dir` (which may not exist yet: then its appearance is watched for), then
    /// follows changes. The initial scan is complete when this returns; it emits no events.
    pub fn start(claude_dir: PathBuf, slots: Arc<dyn SlotResolver>) -> Result<TaskHub, TasksError> {
        TaskHub::start_with(claude_dir, slots, TaskHubOptions::default())
    }

    /// [`TaskHub::start`] with explicit options.
    pub fn start_with(
        claude_dir: PathBuf,
        slots: Arc<dyn SlotResolver>,
        options: TaskHubOptions,
    ) -> Result<TaskHub, TasksError> {
        let root = absolute(&claude_dir);
        let (tx, rx) = mpsc::channel();
        let fs_tx = tx.clone();
        let mut watcher = notify::recommended_watcher(move |res| {
            let _ = fs_tx.send(watch::Msg::Fs(res));
        })?;
        // Read everything, then watch, then look again: the second pass only stats (unchanged
        // files are not read), and catches what changed before the watches were in place. Reading
        // before watching keeps the watcher from waking for thousands of our own file opens.
        let mut model = Model::new(root.clone(), options.active_window, slots);
        let _ = model.apply(Dirty::full(), false);
        let mut watches = watch::WatchSet::default();
        watches.ensure(&mut watcher, &root);
        let _ = model.apply(Dirty::full(), false);

        let capacity = options.channel_capacity.max(16);
        let shared = Arc::new(Shared {
            model: Mutex::new(model),
            events: broadcast::channel(capacity).0,
            statuses: broadcast::channel(256).0,
        });
        let worker = watch::Worker {
            shared: Arc::clone(&shared),
            root: root.clone(),
            watcher,
            watches,
            rx,
            debounce: options.debounce,
            limit_warned: false,
        };
        std::thread::Builder::new()
            .name("missiond-tasks".into())
            .spawn(move || worker.run())?;
        Ok(TaskHub {
            inner: Arc::new(Inner {
                shared,
                root,
                control: tx,
            }),
        })
    }

    /// The watched claude dir (made absolute).
    pub fn claude_dir(&self) -> &Path {
        &self.inner.root
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.inner
            .shared
            .model
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Every list and its tasks: the `cc_tasks_overview` payload and `GET /api/tasks`.
    pub fn overview(&self) -> TasksOverview {
        self.model().overview()
    }

    /// The lists whose session runs in `slot_id`: `GET /api/slots/{id}/tasks`.
    pub fn slot_lists(&self, slot_id: &str) -> Vec<SessionTasks> {
        self.model().slot_lists(slot_id)
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<TaskEvent> {
        self.inner.shared.events.subscribe()
    }

    /// The overview and a receiver of every event after it, taken atomically: what a `/tasks`
    /// connection sends first, with no change lost or repeated between the two.
    pub fn subscribe_with_overview(&self) -> (TasksOverview, broadcast::Receiver<TaskEvent>) {
        let model = self.model();
        let rx = self.inner.shared.events.subscribe();
        (model.overview(), rx)
    }

    /// Busy/idle changes of `<claude dir>/sessions/<pid>.json`, for the semantic classifier.
    pub fn subscribe_session_status(&self) -> broadcast::Receiver<SessionStatus> {
        self.inner.shared.statuses.subscribe()
    }

    /// The current busy/idle status of the session whose process is `pid`, if its file says.
    pub fn session_status(&self, pid: u32) -> Option<SessionStatus> {
        self.model().session_status(pid)
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}
