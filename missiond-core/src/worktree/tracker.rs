//! Keeps a worktree slot's stats current without polling: inotify (notify) on the worktree
//! and its git directory, plus a nudge from the slot when it goes idle, start a refresh after
//! a short quiet spell. An idle worktree costs nothing.

use super::{status, Checkout};
use crate::protocol::worktree::{WorktreeInfo, WorktreeStats};
use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// A burst of writes (a build, a checkout) settles into one refresh.
const SETTLE: Duration = Duration::from_millis(300);

/// The live stats of one worktree.
pub struct Tracker {
    checkout: Checkout,
    stats: Arc<watch::Sender<WorktreeStats>>,
    wake: Arc<Notify>,
    running: Mutex<Option<Running>>,
}

/// What stops when the tracker stops: the watcher and the refresh task.
struct Running {
    _watcher: Option<RecommendedWatcher>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("path", &self.checkout.path)
            .finish()
    }
}

impl Tracker {
    /// Starts watching; `initial` are the stats measured at creation. Must run inside the
    /// tokio runtime.
    pub fn start(checkout: Checkout, initial: WorktreeStats) -> Arc<Tracker> {
        let (stats, _) = watch::channel(initial);
        let stats = Arc::new(stats);
        let wake = Arc::new(Notify::new());
        let watcher = watch_files(&checkout, wake.clone());
        let task = tokio::spawn(refresh_loop(checkout.clone(), stats.clone(), wake.clone()));
        Arc::new(Tracker {
            checkout,
            stats,
            wake,
            running: Mutex::new(Some(Running {
                _watcher: watcher,
                task,
            })),
        })
    }

    pub fn checkout(&self) -> &Checkout {
        &self.checkout
    }

    pub fn stats(&self) -> WorktreeStats {
        *self.stats.borrow()
    }

    pub fn info(&self) -> WorktreeInfo {
        let c = &self.checkout;
        WorktreeInfo {
            repo: c.repo.display().to_string(),
            path: c.path.display().to_string(),
            branch: c.branch.clone(),
            base: c.base.clone(),
            stats: self.stats(),
        }
    }

    /// Measures again soon (the slot went idle, say).
    pub fn refresh(&self) {
        self.wake.notify_one();
    }

    /// Changes of the stats, for the `/events` stream.
    pub fn subscribe(&self) -> watch::Receiver<WorktreeStats> {
        self.stats.subscribe()
    }

    /// Stops watching and measuring (before the worktree is removed).
    pub fn stop(&self) {
        let running = crate::supervisor::run::lock(&self.running).take();
        if let Some(running) = running {
            running.task.abort();
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn refresh_loop(
    checkout: Checkout,
    stats: Arc<watch::Sender<WorktreeStats>>,
    wake: Arc<Notify>,
) {
    loop {
        wake.notified().await;
        tokio::time::sleep(SETTLE).await;
        let c = checkout.clone();
        match tokio::task::spawn_blocking(move || status(&c)).await {
            Ok(Ok(fresh)) => {
                tracing::trace!(path = %checkout.path.display(), ?fresh, "worktree stats");
                stats.send_if_modified(|old| {
                    let changed = *old != fresh;
                    *old = fresh;
                    changed
                });
            }
            Ok(Err(e)) => tracing::debug!(path = %checkout.path.display(), "worktree stats: {e}"),
            Err(_) => return,
        }
    }
}

/// Watches the worktree, its git directory (commits, staging) and the repository's branches;
/// `None`, with a warning,
/// when inotify refuses (too many watches): the slot's idle nudge still refreshes.
fn watch_files(checkout: &Checkout, wake: Arc<Notify>) -> Option<RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| match event {
        Ok(event) if is_change(&event.kind) && !only_locks(&event.paths) => wake.notify_one(),
        Ok(_) => {}
        Err(_) => wake.notify_one(),
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("cannot watch worktree {}: {e}", checkout.path.display());
            return None;
        }
    };
    // The repository's branches: a base that moves on changes `behind`. (`git_dir` is
    // `<common dir>/worktrees/<name>`.)
    let branches = checkout
        .git_dir
        .parent()
        .and_then(|worktrees| worktrees.parent())
        .map(|common| common.join("refs").join("heads"));
    let dirs = [
        Some(checkout.path.clone()),
        Some(checkout.git_dir.clone()),
        branches,
    ];
    for dir in dirs.iter().flatten() {
        if let Err(e) = watcher.watch(dir, RecursiveMode::Recursive) {
            tracing::warn!(
                "cannot watch {} ({e}): its stats refresh only when the slot goes idle",
                dir.display()
            );
        }
    }
    Some(watcher)
}

/// Git's lock files come and go around every update (and around a plain `git status` of a
/// program in the slot); the update itself shows as the rename onto the real file.
fn only_locks(paths: &[std::path::PathBuf]) -> bool {
    !paths.is_empty()
        && paths
            .iter()
            .all(|p| p.extension().is_some_and(|e| e == "lock"))
}

/// Reads (git's own among them) are not changes.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::only_locks;
    use std::path::PathBuf;

    #[test]
    fn lock_files_alone_are_not_changes_but_a_rename_onto_the_real_file_is() {
        let p = |s: &str| PathBuf::from(s);
        assert!(only_locks(&[p("/r/.git/worktrees/a/index.lock")]));
        assert!(!only_locks(&[
            p("/r/.git/worktrees/a/index.lock"),
            p("/r/.git/worktrees/a/index")
        ]));
        assert!(!only_locks(&[p("/w/src/main.rs")]));
        assert!(!only_locks(&[]));
    }
}
