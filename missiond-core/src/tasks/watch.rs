//! The watcher thread: notify (inotify) events -> short debounce -> one model batch -> broadcast.
//!
//! Only the folders that matter are watched: the claude dir itself (not recursively: its
//! `projects/` transcripts change constantly), `tasks/` recursively, `todos/` and `sessions/`.
//! While the claude dir does not exist, its nearest existing ancestor is watched instead, and
//! the set is recomputed whenever one of these folders appears or goes away.
//!
//! The thread blocks on its channel with no timeout unless a retry, an activity expiry or a
//! process check is due: an idle hub costs no CPU. (notify-debouncer-full was not used because
//! its tick thread wakes every few milliseconds forever; the batching here is a few lines.)

use super::files;
use super::model::{Dirty, Model, Outcome};
use super::Shared;
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages into the watcher thread.
pub(crate) enum Msg {
    Fs(notify::Result<notify::Event>),
    Shutdown,
}

/// The folders currently watched, with the inode each had (a folder deleted and re-created
/// under the same name needs a new watch).
#[derive(Default)]
pub(crate) struct WatchSet {
    watched: Vec<(PathBuf, RecursiveMode, u64)>,
    warned: bool,
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| m.ino())
}

fn desired(root: &Path) -> Vec<(PathBuf, RecursiveMode)> {
    if root.is_dir() {
        let mut out = vec![(root.to_path_buf(), RecursiveMode::NonRecursive)];
        for (sub, mode) in [
            ("tasks", RecursiveMode::Recursive),
            ("todos", RecursiveMode::NonRecursive),
            ("sessions", RecursiveMode::NonRecursive),
        ] {
            let p = root.join(sub);
            if p.is_dir() {
                out.push((p, mode));
            }
        }
        return out;
    }
    let mut cur = root.parent();
    while let Some(p) = cur {
        if p.is_dir() {
            return vec![(p.to_path_buf(), RecursiveMode::NonRecursive)];
        }
        cur = p.parent();
    }
    Vec::new()
}

impl WatchSet {
    /// Brings the watches in line with what exists now.
    pub(crate) fn ensure(&mut self, watcher: &mut RecommendedWatcher, root: &Path) {
        let want = desired(root);
        let mut keep = Vec::new();
        for (path, mode, ino) in std::mem::take(&mut self.watched) {
            let still =
                want.iter().any(|(p, m)| *p == path && *m == mode) && inode(&path) == Some(ino);
            if still {
                keep.push((path, mode, ino));
            } else {
                // The folder may be gone already (its watch went with it): errors are expected.
                let _ = watcher.unwatch(&path);
            }
        }
        self.watched = keep;
        for (path, mode) in want {
            if self.watched.iter().any(|(p, _, _)| *p == path) {
                continue;
            }
            let Some(ino) = inode(&path) else { continue };
            match watcher.watch(&path, mode) {
                Ok(()) => self.watched.push((path, mode, ino)),
                Err(e) => {
                    if !self.warned {
                        self.warned = true;
                        tracing::warn!(path = %path.display(), error = %e, "cannot watch task folder");
                    }
                }
            }
        }
    }
}

/// Reads are not changes; everything else (create, write, close-after-write, rename, remove,
/// attribute changes, rescans) may be.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Batching window: a batch is handled once no event arrived for this long (at most four windows
/// after its first event), so a truncate-then-write or an `rm -rf` of a list is one change.
pub(crate) const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);

pub(crate) struct Worker {
    pub shared: Arc<Shared>,
    pub root: PathBuf,
    pub watcher: RecommendedWatcher,
    pub watches: WatchSet,
    pub rx: Receiver<Msg>,
    pub debounce: Duration,
    pub limit_warned: bool,
}

impl Worker {
    pub(crate) fn run(mut self) {
        let mut pending = Dirty::default();
        let mut batch_due: Option<Instant> = None;
        let mut batch_start: Option<Instant> = None;
        let mut next_tick = self.with_model(|m| m.next_deadline());
        loop {
            let deadline = match (batch_due, next_tick) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let msg = match deadline {
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(d) => self
                    .rx
                    .recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match msg {
                Ok(Msg::Fs(Ok(event))) => {
                    let rescan = event.need_rescan();
                    if rescan || is_change(&event.kind) {
                        for path in &event.paths {
                            pending.add(files::classify(&self.root, path));
                        }
                        if rescan {
                            pending.full = true;
                        }
                        if !pending.is_empty() {
                            let now = Instant::now();
                            let start = *batch_start.get_or_insert(now);
                            // Quiet for `debounce`, but never held longer than 4 windows.
                            let quiet = now.checked_add(self.debounce).unwrap_or(now);
                            let cap = start
                                .checked_add(self.debounce.saturating_mul(4))
                                .unwrap_or(start);
                            batch_due = Some(quiet.min(cap));
                        }
                    }
                }
                Ok(Msg::Fs(Err(e))) => {
                    self.on_error(e, &mut pending);
                    let now = Instant::now();
                    batch_due.get_or_insert(now.checked_add(self.debounce).unwrap_or(now));
                }
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if batch_due.is_some_and(|d| d <= now) {
                batch_due = None;
                batch_start = None;
                let dirty = std::mem::take(&mut pending);
                self.process(dirty);
                next_tick = self.with_model(|m| m.next_deadline());
            }
            if next_tick.is_some_and(|d| d <= now) {
                let due = self.with_model(|m| m.due_retries(now));
                self.process(due);
                next_tick = self.with_model(|m| m.next_deadline());
            }
        }
        tracing::debug!("task watcher stopped");
    }

    /// A watch that could not be added (the folder vanished meanwhile, or the inotify limit)
    /// names its folder: that folder is re-read. An error without a path may have lost events:
    /// then everything is re-read.
    fn on_error(&mut self, e: notify::Error, pending: &mut Dirty) {
        if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) && !self.limit_warned {
            self.limit_warned = true;
            tracing::warn!(
                error = %e,
                "inotify watch limit reached: some task lists are not followed \
                 (raise fs.inotify.max_user_watches)"
            );
        }
        if !e.paths.is_empty() {
            tracing::debug!(error = %e, "task watcher error on a path; re-reading it");
            for path in &e.paths {
                pending.add(files::classify(&self.root, path));
            }
            return;
        }
        tracing::warn!(error = %e, "task watcher error; re-reading every task file");
        self.with_model(|m| m.forget_stamps());
        pending.full = true;
    }

    fn with_model<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let mut guard = self.shared.model.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// One batch: fix the watches if folders came or went, apply, broadcast under the lock (so
    /// a subscriber taking the overview under the same lock sees no gap and no duplicate).
    fn process(&mut self, dirty: Dirty) {
        let structural = dirty.full || dirty.tasks_root || dirty.todos_root || dirty.sessions_root;
        if structural {
            self.watches.ensure(&mut self.watcher, &self.root);
        }
        let shared = Arc::clone(&self.shared);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut model = shared.model.lock().unwrap_or_else(|e| e.into_inner());
            let Outcome { events, statuses } = model.apply(dirty, true);
            for ev in events {
                // No receivers is fine: nobody is listening yet.
                let _ = shared.events.send(ev);
            }
            for st in statuses {
                let _ = shared.statuses.send(st);
            }
        }));
        if result.is_err() {
            tracing::error!("task model panicked on a batch; rescanning");
            self.with_model(|m| m.forget_stamps());
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut model = shared.model.lock().unwrap_or_else(|e| e.into_inner());
                let _ = model.apply(Dirty::full(), false);
            }));
        }
    }
}
