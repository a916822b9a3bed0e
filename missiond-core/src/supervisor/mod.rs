//! The set of slots: create, start, kill, restart, remove, and the `/events` broadcast.

mod claude_version;
pub mod fanout;
pub mod guard;
pub mod handover;
mod interact;
pub mod restore;
pub mod run;
pub mod signals;
pub mod slot;

pub use fanout::{FanoutReceiver, RecvError, TryRecvError};
pub use guard::OrphanGuard;
pub use handover::{Handover, HANDOVER_VERSION};
pub use run::{lock, Run, Snapshot, StateView, ViewerMsg, ViewerToken};
pub use signals::{usage_from_statusline, SignalSettings};
pub use slot::{Slot, SlotConfig};

use crate::config::{expand_tilde, validate_spec, DEFAULT_COLS, DEFAULT_ROWS, DEFAULT_SCROLLBACK};
use crate::protocol::worktree::{RemovedSlot, RemovedWorktree, WorktreeRemoval};
use crate::protocol::{Profile, SlotEvent, SlotInfo, SlotSpec};
use crate::semantic::RuleBook;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Lifecycle and state events kept for subscribers that fall behind.
const EVENT_RING: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no slot named '{0}'")]
    NotFound(String),
    #[error("a slot named '{0}' already exists")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("slot '{0}' is not running")]
    NotRunning(String),
    #[error("cannot start slot '{0}': {1}")]
    Spawn(String, #[source] crate::pty::PtyError),
    #[error("cannot write to slot '{0}': {1}")]
    Input(String, #[source] crate::pty::PtyError),
    #[error("slot '{0}' did not exit after SIGKILL")]
    KillTimeout(String),
    #[error("slot '{0}' already has {1} viewers")]
    TooManyViewers(String, usize),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Timeout(String),
    /// Removing the slot would lose work in its worktree.
    #[error("{0}")]
    WorktreeUnsaved(String),
    #[error("{0}")]
    NotAWorktree(String),
}

/// Settings that apply to every slot.
#[derive(Debug, Clone)]
pub struct Settings {
    pub kill_grace: Duration,
    pub max_viewers: usize,
    /// A viewer that takes no frame for this long is closed.
    pub stuck_viewer: Duration,
    /// Where worktree slots get their worktrees (see [`crate::worktree`]).
    pub worktree_root: PathBuf,
    /// Claude Code's own signals: hooks, status line (see [`signals`]).
    pub signals: signals::SignalSettings,
    /// Where runs are recorded; `None` records nothing (see [`crate::recording`]).
    pub recordings: Option<Arc<crate::recording::Recordings>>,
}

#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
}

struct Shared {
    slots: Mutex<BTreeMap<String, Arc<Slot>>>,
    events: broadcast::Sender<SlotEvent>,
    rules: RuleBook,
    settings: Settings,
    guard: Option<Arc<OrphanGuard>>,
    signals: Arc<signals::Signals>,
    /// What `/metrics` counts: this daemon's, not the process's.
    counters: Arc<crate::metrics::Counters>,
    /// Where slots created at run time are recorded (see [`crate::registry`]).
    registry: std::sync::OnceLock<Arc<crate::registry::Registry>>,
}

impl Supervisor {
    pub fn new(settings: Settings, rules: RuleBook, guard: Option<OrphanGuard>) -> Supervisor {
        let (events, _) = broadcast::channel(EVENT_RING);
        Supervisor {
            shared: Arc::new(Shared {
                slots: Mutex::new(BTreeMap::new()),
                events,
                rules,
                signals: Arc::new(signals::Signals::new(settings.signals.clone())),
                counters: Arc::default(),
                settings,
                guard: guard.map(Arc::new),
                registry: std::sync::OnceLock::new(),
            }),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// This daemon's counters (`/metrics`), shared with its slots and routes.
    pub fn counters(&self) -> &Arc<crate::metrics::Counters> {
        &self.shared.counters
    }

    /// The daemon is listening at `addr`: hooks of slots started from now on reach it there.
    pub fn set_listen_addr(&self, addr: std::net::SocketAddr) {
        self.shared.signals.set_addr(addr);
    }

    /// Where the rules of `profile` in force came from (embedded or a file).
    pub fn rules_origin(&self, profile: Profile) -> String {
        self.shared.rules.rules(profile).origin.clone()
    }

    pub fn signals(&self) -> &signals::Signals {
        &self.shared.signals
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SlotEvent> {
        self.shared.events.subscribe()
    }

    /// Every slot, by id.
    pub fn list(&self) -> Vec<SlotInfo> {
        self.all().iter().map(|s| s.info()).collect()
    }

    fn all(&self) -> Vec<Arc<Slot>> {
        lock(&self.shared.slots).values().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Result<Arc<Slot>, SupervisorError> {
        lock(&self.shared.slots)
            .get(id)
            .cloned()
            .ok_or_else(|| SupervisorError::NotFound(id.to_string()))
    }

    /// Creates a slot and starts it when `spec.autostart`; it is recorded in the registry (when
    /// the daemon has one) so it outlives the daemon. Must run inside the tokio runtime; a
    /// worktree slot runs git, so call it from a blocking task.
    pub fn create(&self, spec: SlotSpec) -> Result<SlotInfo, SupervisorError> {
        self.create_as(spec, true)
    }

    /// [`Supervisor::create`] for a slot the config file defines: not recorded.
    pub fn create_unrecorded(&self, spec: SlotSpec) -> Result<SlotInfo, SupervisorError> {
        self.create_as(spec, false)
    }

    fn create_as(&self, spec: SlotSpec, recorded: bool) -> Result<SlotInfo, SupervisorError> {
        let slot = self.create_slot(&spec, None)?;
        if recorded && self.shared.registry.get().is_some() {
            slot.record_with(spec.clone(), self.recorder());
        }
        self.insert(&slot)?;
        if let Some(registry) = self.shared.registry.get().filter(|_| recorded) {
            // A record that could not be restored gives way to the new slot of its id.
            registry.release(&spec.id);
        }
        if spec.autostart {
            if let Err(e) = slot.start(false) {
                lock(&self.shared.slots).remove(&spec.id);
                let _ = self
                    .shared
                    .events
                    .send(SlotEvent::SlotRemoved { slot_id: spec.id });
                self.shared.persist();
                return Err(e);
            }
        }
        self.shared.persist();
        Ok(slot.info())
    }

    /// Builds a slot (not yet listed): `found` is the worktree a restored slot had, else one
    /// is made (or found again) when the spec asks for it.
    fn create_slot(
        &self,
        spec: &SlotSpec,
        found: Option<crate::worktree::Checkout>,
    ) -> Result<Arc<Slot>, SupervisorError> {
        validate_spec(spec).map_err(SupervisorError::Invalid)?;
        if lock(&self.shared.slots).contains_key(&spec.id) {
            return Err(SupervisorError::Exists(spec.id.clone()));
        }
        let config = resolve(spec, &self.shared.settings, found)?;
        let tracker = config.worktree.clone().map(|checkout| {
            let initial = crate::worktree::status(&checkout).unwrap_or_else(|e| {
                tracing::warn!(slot = %spec.id, "worktree stats: {e}");
                Default::default()
            });
            crate::worktree::Tracker::start(checkout, initial)
        });
        let rules = self.shared.rules.rules(config.profile);
        let slot = Slot::new(
            config,
            (
                spec.cols.unwrap_or(DEFAULT_COLS),
                spec.rows.unwrap_or(DEFAULT_ROWS),
            ),
            tracker,
            slot::SlotShared {
                rules,
                events: self.shared.events.clone(),
                guard: self.shared.guard.clone(),
                kill_grace: self.shared.settings.kill_grace,
                signals: self.shared.signals.clone(),
                counters: self.shared.counters.clone(),
            },
        );
        self.announce_worktree_changes(&slot);
        Ok(slot)
    }

    /// Lists a built slot and tells `/events`.
    fn insert(&self, slot: &Arc<Slot>) -> Result<(), SupervisorError> {
        {
            let mut slots = lock(&self.shared.slots);
            if slots.contains_key(slot.id()) {
                return Err(SupervisorError::Exists(slot.id().to_string()));
            }
            slots.insert(slot.id().to_string(), slot.clone());
        }
        let _ = self
            .shared
            .events
            .send(SlotEvent::SlotCreated { slot: slot.info() });
        Ok(())
    }

    pub fn start(&self, id: &str) -> Result<SlotInfo, SupervisorError> {
        let slot = self.get(id)?;
        slot.start(false)?;
        Ok(slot.info())
    }

    /// Kills the slot's program (see [`Slot::kill`]). The kill runs in a task of its own: once
    /// asked, it escalates to SIGKILL and reaps even if the caller stops waiting.
    pub async fn kill(&self, id: &str) -> Result<SlotInfo, SupervisorError> {
        let slot = self.get(id)?;
        let grace = self.shared.settings.kill_grace;
        let killing = slot.clone();
        run_to_end(async move { killing.kill(grace).await }).await?;
        Ok(slot.info())
    }

    /// Kills and starts again, to the end whatever the caller does (see [`Supervisor::kill`]).
    pub async fn restart(&self, id: &str) -> Result<SlotInfo, SupervisorError> {
        let slot = self.get(id)?;
        let grace = self.shared.settings.kill_grace;
        let restarting = slot.clone();
        run_to_end(async move {
            restarting.kill(grace).await?;
            restarting.start(true)
        })
        .await?;
        Ok(slot.info())
    }

    /// Stops the slot if it runs, then forgets it, to the end whatever the caller does. A
    /// worktree slot's worktree goes too, unless it holds unsaved work (refused, nothing is done)
    /// or `removal` says otherwise.
    pub async fn remove(
        &self,
        id: &str,
        removal: WorktreeRemoval,
    ) -> Result<RemovedSlot, SupervisorError> {
        let this = self.clone();
        let id = id.to_string();
        run_to_end(async move { this.remove_now(&id, removal).await }).await
    }

    async fn remove_now(
        &self,
        id: &str,
        removal: WorktreeRemoval,
    ) -> Result<RemovedSlot, SupervisorError> {
        let slot = match self.get(id) {
            Ok(slot) => slot,
            // A recorded slot that could not be restored: `rm` is how it is forgotten.
            Err(e) => return self.forget_held(id).ok_or(e),
        };
        let checkout = slot.worktree().map(|t| t.checkout().clone());
        if let (Some(c), WorktreeRemoval::Safe) = (&checkout, removal) {
            refuse_unsaved(id, c).await?;
        }
        slot.kill(self.shared.settings.kill_grace).await?;
        let mut removed = RemovedSlot {
            id: id.to_string(),
            worktree: None,
        };
        if let Some(c) = checkout {
            if removal == WorktreeRemoval::Safe {
                // The program may have written something between the check and its end.
                refuse_unsaved(id, &c).await?;
            }
            let kept = removal == WorktreeRemoval::Keep;
            if !kept {
                if let Some(tracker) = slot.worktree() {
                    tracker.stop();
                }
                let gone = c.clone();
                tokio::task::spawn_blocking(move || crate::worktree::remove(&gone))
                    .await
                    .map_err(|e| SupervisorError::Conflict(e.to_string()))?
                    .map_err(|e| {
                        SupervisorError::Conflict(format!(
                            "slot '{id}' was stopped but its worktree {} could not be removed: {e}",
                            c.path.display()
                        ))
                    })?;
            }
            removed.worktree = Some(RemovedWorktree {
                path: c.path.display().to_string(),
                branch: c.branch.clone(),
                kept,
            });
        }
        lock(&self.shared.slots).remove(id);
        if let Some(registry) = self.shared.registry.get() {
            registry.release(id);
            registry.forget_screen(id);
        }
        self.shared.persist();
        let _ = self.shared.events.send(SlotEvent::SlotRemoved {
            slot_id: id.to_string(),
        });
        Ok(removed)
    }

    /// Whether the registry holds a record of `id` without a live slot (one that could not be
    /// restored, which `remove` forgets).
    pub fn holds_unrestored(&self, id: &str) -> bool {
        self.get(id).is_err()
            && self
                .shared
                .registry
                .get()
                .is_some_and(|registry| registry.holds(id))
    }

    /// Forgets a record the registry holds without a live slot; `None` when it has none.
    fn forget_held(&self, id: &str) -> Option<RemovedSlot> {
        let registry = self.shared.registry.get()?;
        if !registry.holds(id) {
            return None;
        }
        registry.release(id);
        registry.forget_screen(id);
        self.shared.persist();
        Some(RemovedSlot {
            id: id.to_string(),
            worktree: None,
        })
    }

    /// Sends the slot's info on `/events` whenever its worktree stats change.
    fn announce_worktree_changes(&self, slot: &Arc<Slot>) {
        let Some(mut changes) = slot.worktree().map(|t| t.subscribe()) else {
            return;
        };
        let slot = Arc::downgrade(slot);
        let events = self.shared.events.clone();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let Some(slot) = slot.upgrade() else { return };
                let _ = events.send(SlotEvent::SlotUpdated { slot: slot.info() });
            }
        });
    }

    /// Ends every slot (in parallel), as on daemon shutdown. The registry keeps each recorded
    /// slot's last screen, then stops recording: these kills are not the slots' fate, and
    /// the next daemon restores them.
    pub async fn shutdown(&self) {
        self.keep_for_restart().await;
        let grace = self.shared.settings.kill_grace;
        let kills = self.all().into_iter().map(|slot| async move {
            if let Err(e) = slot.kill(grace).await {
                tracing::warn!("{e}");
            }
        });
        futures_util::future::join_all(kills).await;
    }

    /// The slot whose program is `pid` or one of its ancestors.
    pub fn slot_for_pid(&self, pid: u32) -> Option<String> {
        let runs: Vec<(u32, String)> = self
            .all()
            .iter()
            .filter_map(|s| s.run().map(|r| (r.pid(), s.id().to_string())))
            .collect();
        let mut current = pid;
        for _ in 0..16 {
            if let Some((_, id)) = runs.iter().find(|(p, _)| *p == current) {
                return Some(id.clone());
            }
            current = crate::procfs::stat(current)?.ppid;
            if current <= 1 {
                return None;
            }
        }
        None
    }

    /// Claude Code's session file `sessions/<pid>.json` names the conversation of the slot
    /// running `pid`: what a restored slot resumes. (The one place the session id of a slot
    /// is learnt.)
    pub fn note_session(&self, pid: u32, session_id: &str) {
        let Some(slot) = self.slot_for_pid(pid).and_then(|id| self.get(&id).ok()) else {
            return;
        };
        if slot.config.profile == Profile::ClaudeCode {
            slot.set_session_id(Some(session_id.to_string()));
        }
    }

    /// Claude Code's session file says the process `pid` is busy or idle.
    pub fn session_status(&self, pid: u32, busy: bool) {
        if let Some(id) = self.slot_for_pid(pid) {
            if let Some(run) = self.get(&id).ok().and_then(|s| s.run()) {
                run.session_busy(busy);
            }
        }
    }
}

impl crate::tasks::SlotResolver for Supervisor {
    fn slot_for_pid(&self, pid: u32) -> Option<String> {
        Supervisor::slot_for_pid(self, pid)
    }

    fn slot_for_session(&self, session_id: &str) -> Option<String> {
        self.all()
            .iter()
            .find(|s| s.session_id().as_deref() == Some(session_id))
            .map(|s| s.id().to_string())
    }
}

/// Runs `work` as a task of its own and waits for it: dropping the returned future (a client
/// that hung up) leaves the work running to its end.
async fn run_to_end<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, SupervisorError>> + Send + 'static,
) -> Result<T, SupervisorError> {
    tokio::spawn(work).await.unwrap_or_else(|e| {
        Err(SupervisorError::Conflict(format!(
            "the operation failed: {e}"
        )))
    })
}

/// Refuses to remove a worktree holding work that exists nowhere else, and says what to do.
async fn refuse_unsaved(id: &str, c: &crate::worktree::Checkout) -> Result<(), SupervisorError> {
    let (id_owned, probe) = (id.to_string(), c.clone());
    let unsaved =
        tokio::task::spawn_blocking(move || crate::worktree::unsaved_work(&id_owned, &probe))
            .await
            .map_err(|e| SupervisorError::Conflict(e.to_string()))?;
    match unsaved {
        None => Ok(()),
        Some(message) => Err(SupervisorError::WorktreeUnsaved(message)),
    }
}

/// Fills in defaults and checks the working directory exists; for a worktree slot, creates
/// (or finds again) its worktree and runs the program there. Blocking for worktree slots.
fn resolve(
    spec: &SlotSpec,
    settings: &Settings,
    found: Option<crate::worktree::Checkout>,
) -> Result<SlotConfig, SupervisorError> {
    let mut cwd = match &spec.cwd {
        Some(dir) => expand_tilde(dir),
        None => crate::config::home_dir().unwrap_or_else(|| PathBuf::from("/")),
    };
    if !cwd.is_dir() {
        let why = if cwd.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        return Err(SupervisorError::Invalid(format!(
            "working directory {} {why}",
            cwd.display()
        )));
    }
    let worktree = match (&spec.worktree, found) {
        (_, Some(checkout)) => {
            cwd = checkout.cwd.clone();
            Some(checkout)
        }
        (Some(wt), None) => {
            let (checkout, prepared) =
                crate::worktree::prepare(&spec.id, wt, &cwd, &settings.worktree_root)
                    .map_err(|e| SupervisorError::Invalid(format!("slot '{}': {e}", spec.id)))?;
            tracing::info!(
                slot = %spec.id,
                path = %checkout.path.display(),
                branch = %checkout.branch,
                created = prepared.created,
                copied = ?prepared.copied,
                "worktree ready"
            );
            cwd = checkout.cwd.clone();
            Some(checkout)
        }
        (None, None) => None,
    };
    let profile = spec
        .profile
        .unwrap_or_else(|| Profile::for_command(&spec.command));
    let mut env = BTreeMap::new();
    if profile == Profile::ClaudeCode {
        // Current models hide Claude Code's task tools without it; a slot's env may say otherwise.
        env.insert("CLAUDE_CODE_ENABLE_TODO_TOOLS".to_string(), "1".to_string());
    }
    env.extend(spec.env.clone());
    Ok(SlotConfig {
        id: spec.id.clone(),
        command: spec.command.clone(),
        args: spec.args.clone(),
        cwd,
        env,
        profile,
        restart: spec.restart,
        scrollback: spec.scrollback.unwrap_or(DEFAULT_SCROLLBACK),
        worktree,
        hooks: spec.hooks,
        recordings: settings
            .recordings
            .clone()
            .filter(|r| spec.record.unwrap_or(r.config().enabled)),
    })
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
