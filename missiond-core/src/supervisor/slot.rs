//! A slot: a named place where a program runs, outlives its runs, and keeps its state.

use super::run::{lock, Run, RunObserver, StateView};
use super::signals::{SignalStats, Signals, SlotSignals};
use super::{now_millis, SupervisorError};
use crate::metrics::Counters;
use crate::protocol::{
    Profile, RestartPolicy, Restored, SemanticState, SlotEvent, SlotInfo, SlotSpec, SlotStatus,
    StateDetail,
};
use crate::pty::{ExitInfo, SpawnRequest};
use crate::registry::Record;
use crate::semantic::{Rules, Transition};
use crate::worktree::Tracker;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

/// A slot's settings with every default filled in.
#[derive(Debug, Clone)]
pub struct SlotConfig {
    pub id: String,
    pub command: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: std::collections::BTreeMap<String, String>,
    pub profile: Profile,
    pub restart: RestartPolicy,
    pub scrollback: usize,
    /// The slot's own git worktree, when it runs in one (`cwd` is inside it).
    pub worktree: Option<crate::worktree::Checkout>,
    /// Claude Code's hooks and status line: `None` follows the daemon's default.
    pub hooks: Option<bool>,
    /// Where this slot's runs are recorded; `None` when it is not recorded.
    pub recordings: Option<Arc<crate::recording::Recordings>>,
}

/// Backoff of automatic restarts: 1 s doubling to 60 s, reset after a minute of healthy running.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Lifecycle {
    cols: u16,
    rows: u16,
    status: SlotStatus,
    run: Option<Arc<Run>>,
    started_at: Option<u64>,
    started: Option<Instant>,
    exit: Option<ExitInfo>,
    restarts: u32,
    /// Automatic restarts in a row without a healthy minute between them.
    quick_failures: u32,
    /// False once a user killed the slot: the restart policy stays quiet.
    wanted: bool,
    /// Bumped by every start, so a stale restart timer knows it is stale.
    generation: u64,
}

/// Where a slot created at run time reports its changes: the registry (see
/// [`crate::registry`]), through the supervisor.
pub(crate) trait Recorder: Send + Sync {
    /// Something recorded of a slot changed: write the registry.
    fn slot_changed(&self);
    /// The slot's program ended by itself (or by a signal from outside). Recorded a moment
    /// later, unless the daemon is stopping by then: when a machine shuts down, its programs
    /// and the daemon get SIGTERM together, and those slots must come back after the reboot.
    fn slot_exited(&self);
    /// The slot's screen as lines, to keep for a restored run's scrollback.
    fn save_screen(&self, id: &str, lines: &[u8]);
}

/// A recorded slot's spec as asked and its recorder.
struct Recording {
    spec: SlotSpec,
    recorder: Arc<dyn Recorder>,
}

/// How a restored slot came back (its conversation's id is with its signals).
#[derive(Debug, Default)]
struct Carried {
    restored: Option<Restored>,
}

/// What a slot takes from its supervisor: its profile's rules, the event channel, the orphan
/// guard, the kill grace and Claude Code's signals.
pub struct SlotShared {
    pub rules: Arc<Rules>,
    pub events: broadcast::Sender<SlotEvent>,
    pub guard: Option<Arc<super::guard::OrphanGuard>>,
    pub kill_grace: Duration,
    pub signals: Arc<Signals>,
    pub counters: Arc<Counters>,
}

pub struct Slot {
    pub config: SlotConfig,
    life: Mutex<Lifecycle>,
    state: watch::Sender<StateView>,
    events: broadcast::Sender<SlotEvent>,
    rules: Arc<Rules>,
    guard: Option<Arc<super::guard::OrphanGuard>>,
    /// The Claude Code release of a `claude-code` slot, once `--version` has answered.
    claude_version: Mutex<Option<String>>,
    worktree: Option<Arc<Tracker>>,
    /// Between SIGTERM and SIGKILL, for what a program leaves in its session when it exits.
    kill_grace: Duration,
    /// The daemon's side of Claude Code's own signals, and this slot's.
    signals: Arc<Signals>,
    own_signals: SlotSignals,
    /// The daemon's counters (`/metrics`).
    counters: Arc<Counters>,
    carried: Mutex<Carried>,
    /// Set for slots created at run time: they are in the registry.
    recording: OnceLock<Recording>,
    me: Weak<Slot>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("id", &self.config.id).finish()
    }
}

impl Slot {
    pub fn new(
        config: SlotConfig,
        (cols, rows): (u16, u16),
        worktree: Option<Arc<Tracker>>,
        shared: SlotShared,
    ) -> Arc<Slot> {
        let SlotShared {
            rules,
            events,
            guard,
            kill_grace,
            signals,
            counters,
        } = shared;
        let (state, _) = watch::channel(StateView {
            state: SemanticState::Starting,
            detail: StateDetail::default(),
            since: now_millis(),
        });
        Arc::new_cyclic(|me| Slot {
            config,
            life: Mutex::new(Lifecycle {
                cols,
                rows,
                status: SlotStatus::Exited,
                run: None,
                started_at: None,
                started: None,
                exit: None,
                restarts: 0,
                quick_failures: 0,
                wanted: false,
                generation: 0,
            }),
            state,
            events,
            rules,
            guard,
            claude_version: Mutex::new(None),
            worktree,
            kill_grace,
            signals,
            own_signals: SlotSignals::new(),
            counters,
            carried: Mutex::new(Carried::default()),
            recording: OnceLock::new(),
            me: me.clone(),
        })
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn info(&self) -> SlotInfo {
        let life = lock(&self.life);
        let view = self.state.borrow().clone();
        SlotInfo {
            id: self.config.id.clone(),
            command: self.config.command.clone(),
            args: self.config.args.clone(),
            cwd: self.config.cwd.display().to_string(),
            cols: life.cols,
            rows: life.rows,
            profile: self.config.profile,
            restart: self.config.restart,
            pid: life
                .run
                .as_ref()
                .filter(|_| life.status != SlotStatus::Exited)
                .map(|r| r.pid()),
            status: life.status,
            state: view.state,
            state_detail: view.detail,
            state_since: view.since,
            started_at: life.started_at,
            exit_code: life.exit.as_ref().and_then(|e| e.code),
            exit_signal: life.exit.as_ref().and_then(|e| e.signal.clone()),
            restarts: life.restarts,
            viewers: life.run.as_ref().map(|r| r.viewer_count()).unwrap_or(0),
            claude_version: lock(&self.claude_version).clone(),
            worktree: self.worktree.as_ref().map(|t| t.info()),
            session_id: self.own_signals.session_id(),
            usage: self.own_signals.usage(),
            restored: lock(&self.carried).restored,
        }
    }

    /// The Claude Code session of the current (or last) run, when known: the `--session-id`
    /// missiond gave it, or the one its hooks named.
    pub fn session_id(&self) -> Option<String> {
        self.own_signals.session_id()
    }

    /// This slot's side of Claude Code's signals (its hook secret, what was heard).
    pub fn signals(&self) -> &SlotSignals {
        &self.own_signals
    }

    pub fn signal_stats(&self) -> SignalStats {
        self.own_signals.stats()
    }

    pub fn claude_version(&self) -> Option<String> {
        lock(&self.claude_version).clone()
    }

    /// One of Claude Code's hooks ran in this slot: counted, and handed to the classifier.
    pub fn hook(&self, payload: &serde_json::Value) {
        let event = payload
            .get("hook_event_name")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let session = payload.get("session_id").and_then(|v| v.as_str());
        let before = self.own_signals.session_id();
        crate::metrics::add(&self.counters.hook_events, 1);
        self.own_signals.hook_heard(event, session);
        if self.own_signals.session_id() != before {
            // A resumed or cleared conversation: the registry resumes this one next time.
            self.recorded_change();
        }
        if let Some(run) = self.run() {
            run.hook(crate::semantic::hooks::HookSignal::from_payload(payload));
        }
    }

    /// Claude Code's status line ran: new usage figures, sent on `/events` at most once a second.
    pub fn statusline(&self, usage: crate::protocol::signals::Usage) {
        use super::signals::UsageEvent;
        crate::metrics::add(&self.counters.statusline_updates, 1);
        match self.own_signals.usage_heard(usage) {
            UsageEvent::Now(usage) => self.send_usage(usage),
            UsageEvent::After(wait) => {
                let me = self.me.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Some(slot) = me.upgrade() {
                        if let Some(usage) = slot.own_signals.take_due_usage() {
                            slot.send_usage(usage);
                        }
                    }
                });
            }
            UsageEvent::None => {}
        }
    }

    fn send_usage(&self, usage: crate::protocol::signals::Usage) {
        let _ = self.events.send(SlotEvent::Usage {
            slot_id: self.config.id.clone(),
            usage,
        });
    }

    /// Puts the slot in the registry: from now on its changes are written there.
    pub(crate) fn record_with(&self, spec: SlotSpec, recorder: Arc<dyn Recorder>) {
        let _ = self.recording.set(Recording { spec, recorder });
    }

    /// The slot as the registry keeps it; `None` for a slot from the config file.
    pub fn record(&self) -> Option<Record> {
        let recording = self.recording.get()?;
        let (cols, rows, running) = {
            let life = lock(&self.life);
            (life.cols, life.rows, life.status != SlotStatus::Exited)
        };
        Some(Record {
            spec: recording.spec.clone(),
            cols,
            rows,
            running,
            session_id: self.session_id(),
            worktree: self.config.worktree.clone(),
        })
    }

    fn recorded_change(&self) {
        if let Some(recording) = self.recording.get() {
            recording.recorder.slot_changed();
        }
    }

    /// Notes the slot's Claude Code session from elsewhere than its hooks (its session file,
    /// the registry, a handover), and records it when it is news.
    pub fn set_session_id(&self, session_id: Option<String>) {
        if self.own_signals.set_session_id(session_id) {
            self.recorded_change();
        }
    }

    pub(crate) fn set_restored(&self, restored: Restored) {
        lock(&self.carried).restored = Some(restored);
    }

    /// Whether the user still wants the program running (no kill since its start).
    pub(crate) fn wanted(&self) -> bool {
        lock(&self.life).wanted
    }

    /// The slot's worktree and its live stats, when it runs in one.
    pub fn worktree(&self) -> Option<&Arc<Tracker>> {
        self.worktree.as_ref()
    }

    /// The current run, if the program is running (or has exited but not been restarted).
    pub fn run(&self) -> Option<Arc<Run>> {
        lock(&self.life).run.clone()
    }

    /// The current run if its program is still running.
    pub fn live_run(&self) -> Result<Arc<Run>, SupervisorError> {
        let life = lock(&self.life);
        match (&life.run, life.status) {
            (Some(run), SlotStatus::Starting | SlotStatus::Running) => Ok(run.clone()),
            _ => Err(SupervisorError::NotRunning(self.config.id.clone())),
        }
    }

    pub fn size(&self) -> (u16, u16) {
        let life = lock(&self.life);
        (life.cols, life.rows)
    }

    pub fn state(&self) -> StateView {
        self.state.borrow().clone()
    }

    pub fn watch_state(&self) -> watch::Receiver<StateView> {
        self.state.subscribe()
    }

    /// Starts the program unless it is running. `automatic` marks a restart by policy.
    pub fn start(&self, automatic: bool) -> Result<(), SupervisorError> {
        self.launch(automatic, &self.config.args, &[])
    }

    /// Starts the program of a restored slot, with `args` instead of the configured ones (a
    /// `--resume`) and `earlier` (the last run's lines) in its scrollback.
    pub(crate) fn start_restored(
        &self,
        args: &[String],
        earlier: &[u8],
    ) -> Result<(), SupervisorError> {
        self.launch(false, args, earlier)
    }

    fn launch(
        &self,
        automatic: bool,
        program_args: &[String],
        earlier: &[u8],
    ) -> Result<(), SupervisorError> {
        let mut life = lock(&self.life);
        if matches!(life.status, SlotStatus::Starting | SlotStatus::Running) {
            return Ok(());
        }
        // A worktree's setup command runs first, in the slot's own terminal.
        let launch = match self.config.profile {
            Profile::ClaudeCode => super::signals::launch_with_args(
                &self.config,
                program_args,
                &self.signals,
                &self.own_signals.secret(),
            ),
            Profile::Shell => super::signals::Launch {
                args: program_args.to_vec(),
                env: self.config.env.clone(),
                session_id: None,
                hooks: false,
            },
        };
        let (command, args) = self
            .config
            .worktree
            .as_ref()
            .and_then(|c| crate::worktree::with_setup(c, &self.config.command, &launch.args))
            .unwrap_or_else(|| (self.config.command.clone(), launch.args.clone()));
        let req = SpawnRequest {
            command,
            args,
            cwd: self.config.cwd.clone(),
            env: launch.env.clone(),
            cols: life.cols,
            rows: life.rows,
        };
        let observer = self.observer();
        let recorder = self.begin_recording(&req);
        let run = Run::start_after(
            &req,
            self.config.scrollback,
            self.rules.clone(),
            observer,
            earlier,
            recorder.clone(),
        )
        .map_err(|e| {
            if let Some(recorder) = &recorder {
                recorder.marker(format!("exit:spawn failed: {e}"));
                recorder.finish();
            }
            SupervisorError::Spawn(self.config.id.clone(), e)
        })?;
        self.own_signals.started(&launch);
        if automatic {
            life.restarts += 1;
        }
        life.generation += 1;
        life.status = SlotStatus::Running;
        life.started_at = Some(now_millis());
        life.started = Some(Instant::now());
        life.exit = None;
        life.wanted = true;
        life.run = Some(run.clone());
        let generation = life.generation;
        drop(life);
        if let Some(guard) = &self.guard {
            guard.watch(run.pid());
        }
        self.set_state(SemanticState::Starting, StateDetail::default());
        let _ = self.events.send(SlotEvent::SlotStarted {
            slot_id: self.config.id.clone(),
            pid: Some(run.pid()),
        });
        self.spawn_exit_watch(run, generation);
        if self.config.profile == Profile::ClaudeCode {
            self.spawn_version_query();
        }
        self.recorded_change();
        Ok(())
    }

    /// Carries on `run`, a program the image before an upgrade started in this slot.
    pub(crate) fn adopt_run(&self, run: Arc<Run>, started_at: Option<u64>, restarts: u32) {
        let generation = {
            let mut life = lock(&self.life);
            life.generation += 1;
            life.status = SlotStatus::Running;
            life.started_at = started_at;
            life.started = Some(Instant::now());
            life.exit = None;
            life.wanted = true;
            life.restarts = restarts;
            life.run = Some(run.clone());
            life.generation
        };
        self.spawn_exit_watch(run, generation);
        if self.config.profile == Profile::ClaudeCode {
            self.spawn_version_query();
        }
    }

    /// The state the image before an upgrade read from this slot's screen.
    pub(crate) fn carry_state(&self, view: StateView) {
        self.state.send_replace(view);
    }

    /// How a run reports back to this slot.
    pub(crate) fn observer(&self) -> Arc<dyn RunObserver> {
        Arc::new(Observer {
            slot: self.me.clone(),
            counters: self.counters.clone(),
        })
    }

    /// The spec this slot was recorded with, if it is recorded.
    pub(crate) fn recorded_spec(&self) -> Option<SlotSpec> {
        self.recording.get().map(|r| r.spec.clone())
    }

    /// A new recording for the run `req` starts, unless the slot is not recorded.
    fn begin_recording(&self, req: &SpawnRequest) -> Option<crate::recording::Recorder> {
        let mut command = vec![req.command.clone()];
        command.extend(req.args.iter().cloned());
        self.begin_recording_of(req.cols, req.rows, &command.join(" "))
    }

    /// A new recording (of a run started here, or adopted after an upgrade). A recording that
    /// cannot be opened is logged and the slot runs unrecorded.
    pub(crate) fn begin_recording_of(
        &self,
        cols: u16,
        rows: u16,
        command: &str,
    ) -> Option<crate::recording::Recorder> {
        let recordings = self.config.recordings.as_ref()?;
        match recordings.begin(&self.config.id, cols, rows, command) {
            Ok(recorder) => Some(recorder),
            Err(e) => {
                tracing::warn!(slot = %self.config.id, "run not recorded: {e}");
                None
            }
        }
    }

    /// Adds a marker to the current run's recording, if it is recorded.
    pub fn record_marker(&self, label: impl Into<String>) {
        if let Some(recorder) = self.run().and_then(|r| r.recorder().cloned()) {
            recorder.marker(label);
        }
    }

    /// Asks the slot's command which Claude Code release it is (off the caller's path: the
    /// answer takes a process start).
    fn spawn_version_query(&self) {
        let me = self.me.clone();
        let (command, env, cwd) = (
            self.config.command.clone(),
            self.config.env.clone(),
            self.config.cwd.clone(),
        );
        tokio::spawn(async move {
            let version = super::claude_version::ask(&command, &env, &cwd).await;
            if let (Some(slot), Some(version)) = (me.upgrade(), version) {
                *lock(&slot.claude_version) = Some(version);
            }
        });
    }

    /// Ends the program and everything else in its session: SIGHUP and SIGTERM, SIGKILL after
    /// `grace`, then waits for the reaping. The restart policy stays quiet until the next
    /// explicit start. Callers that answer a client run this in a task of its own, so a client
    /// that goes away does not stop it half way (see `Supervisor::kill`).
    pub async fn kill(&self, grace: Duration) -> Result<(), SupervisorError> {
        let run = {
            let mut life = lock(&self.life);
            life.wanted = false;
            life.run.clone()
        };
        let Some(run) = run else { return Ok(()) };
        // Even when the program has exited: what it left in its session goes too.
        let sid = run.pid();
        let emptied = tokio::task::spawn_blocking(move || crate::pty::end_session(sid, grace))
            .await
            .unwrap_or(false);
        if !emptied {
            tracing::warn!(slot = %self.config.id, "processes of the session survived SIGKILL");
        }
        // SIGKILL cannot be refused; the wait only covers reaping and draining output.
        if tokio::time::timeout(Duration::from_secs(5), run.exited())
            .await
            .is_err()
        {
            return Err(SupervisorError::KillTimeout(self.config.id.clone()));
        }
        Ok(())
    }

    pub async fn resize(&self, cols: u16, rows: u16) -> Result<(), SupervisorError> {
        for v in [cols, rows] {
            if !(2..=crate::config::MAX_DIMENSION).contains(&v) {
                return Err(SupervisorError::Invalid(format!(
                    "size must be between 2 and {} columns and rows, not {cols}x{rows}",
                    crate::config::MAX_DIMENSION
                )));
            }
        }
        let run = {
            let mut life = lock(&self.life);
            life.cols = cols;
            life.rows = rows;
            life.run.clone()
        };
        self.recorded_change();
        if let Some(run) = run {
            run.resize(cols, rows)
                .await
                .map_err(|e| SupervisorError::Input(self.config.id.clone(), e))?;
        }
        Ok(())
    }

    fn set_state(&self, state: SemanticState, detail: StateDetail) {
        let (prev, prev_since, detail_changed) = {
            let view = self.state.borrow();
            (view.state, view.since, view.detail != detail)
        };
        // A new dialog or error detail in the same state keeps `since`: the state did not change
        // (an answer tells a redrawn dialog from a new one by it).
        let since = if prev == state && state != SemanticState::Starting {
            prev_since
        } else {
            now_millis()
        };
        if state == SemanticState::Idle && prev != SemanticState::Idle {
            // A finished turn is when an agent's edits and commits are worth counting.
            if let Some(tracker) = &self.worktree {
                tracker.refresh();
            }
        }
        self.state.send_replace(StateView {
            state,
            detail: detail.clone(),
            since,
        });
        if prev != state
            || matches!(state, SemanticState::Confirming | SemanticState::Error)
            || detail_changed
        {
            let _ = self.events.send(SlotEvent::SlotState {
                slot_id: self.config.id.clone(),
                state,
                prev_state: Some(prev),
                detail,
            });
        }
    }

    /// After each exit: end what the program left in its session, then apply the restart
    /// policy with backoff.
    fn spawn_exit_watch(&self, run: Arc<Run>, generation: u64) {
        let me = self.me.clone();
        let guard = self.guard.clone();
        let grace = self.kill_grace;
        tokio::spawn(async move {
            let exit = run.exited().await;
            let sid = run.pid();
            // Runs to the end even if the slot is removed meanwhile; the orphan guard keeps
            // the session listed until it is empty.
            tokio::task::spawn_blocking(move || {
                crate::pty::end_session(sid, grace);
                if let Some(guard) = guard {
                    guard.forget(sid);
                }
            });
            let Some(slot) = me.upgrade() else { return };
            let delay = {
                let mut life = lock(&slot.life);
                if life.generation != generation || !life.wanted {
                    return;
                }
                let failed = exit.code != Some(0);
                let restart = match slot.config.restart {
                    RestartPolicy::Never => false,
                    RestartPolicy::OnFailure => failed,
                    RestartPolicy::Always => true,
                };
                if !restart {
                    return;
                }
                if life.started.is_some_and(|s| s.elapsed() >= HEALTHY_AFTER) {
                    life.quick_failures = 0;
                }
                let delay = BACKOFF_FIRST
                    .saturating_mul(1u32 << life.quick_failures.min(16))
                    .min(BACKOFF_MAX);
                life.quick_failures += 1;
                delay
            };
            tracing::info!(slot = %slot.config.id, ?exit, "restarting in {delay:?}");
            tokio::time::sleep(delay).await;
            let still_wanted = {
                let life = lock(&slot.life);
                life.generation == generation && life.wanted && life.status == SlotStatus::Exited
            };
            if still_wanted {
                if let Err(e) = slot.start(true) {
                    tracing::warn!(slot = %slot.config.id, "restart failed: {e}");
                }
            }
        });
    }
}

/// The parser and reader threads' way back into the slot, without keeping it alive.
struct Observer {
    slot: Weak<Slot>,
    counters: Arc<Counters>,
}

impl RunObserver for Observer {
    fn output_read(&self, bytes: usize) {
        crate::metrics::add(&self.counters.pty_bytes_read, bytes as u64);
    }

    fn screen_settled(&self, screen: &mut crate::screen::Screen) {
        let Some(slot) = self.slot.upgrade() else {
            return;
        };
        if let Some(recording) = slot.recording.get() {
            recording
                .recorder
                .save_screen(&slot.config.id, &screen.lines_ansi());
        }
    }

    fn state_changed(&self, t: &Transition) {
        if let Some(slot) = self.slot.upgrade() {
            let mut detail = t.detail.clone();
            if let Some(drift) = &mut detail.drift {
                drift.claude_version = slot.claude_version();
                if slot.own_signals.drift_seen(drift) {
                    tracing::warn!(
                        slot = %slot.config.id,
                        release = drift.claude_version.as_deref().unwrap_or("unknown"),
                        screen = %drift.screen,
                        hooks = %drift.hooks,
                        "the screen and Claude Code's hooks disagree: the state rules may be wrong for this release (update the rules, docs/RULES.md)"
                    );
                }
            }
            slot.set_state(t.state, detail);
        }
    }

    fn exited(&self, exit: &ExitInfo) {
        let Some(slot) = self.slot.upgrade() else {
            return;
        };
        {
            let mut life = lock(&slot.life);
            life.status = SlotStatus::Exited;
            life.exit = Some(exit.clone());
        }
        if let Some(tracker) = &slot.worktree {
            tracker.refresh();
        }
        if let Some(recording) = slot.recording.get() {
            if slot.wanted() {
                recording.recorder.slot_exited();
            } else {
                // Killed by the user: it stays exited, whatever happens next.
                recording.recorder.slot_changed();
            }
        }
        let _ = slot.events.send(SlotEvent::SlotExited {
            slot_id: slot.config.id.clone(),
            code: exit.code,
            signal: exit.signal.clone(),
        });
    }
}
