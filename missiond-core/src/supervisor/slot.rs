//! A slot: a named place where a program runs, outlives its runs, and keeps its state.

use super::run::{lock, Run, RunObserver, StateView};
use super::{now_millis, SupervisorError};
use crate::protocol::{
    Profile, RestartPolicy, SemanticState, SlotEvent, SlotInfo, SlotStatus, StateDetail,
};
use crate::pty::{ExitInfo, SpawnRequest};
use crate::semantic::{Rules, Transition};
use crate::worktree::Tracker;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
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
        cols: u16,
        rows: u16,
        rules: Arc<Rules>,
        events: broadcast::Sender<SlotEvent>,
        guard: Option<Arc<super::guard::OrphanGuard>>,
        worktree: Option<Arc<Tracker>>,
        kill_grace: Duration,
    ) -> Arc<Slot> {
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
        }
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
        let mut life = lock(&self.life);
        if matches!(life.status, SlotStatus::Starting | SlotStatus::Running) {
            return Ok(());
        }
        // A worktree's setup command runs first, in the slot's own terminal.
        let (command, args) = self
            .config
            .worktree
            .as_ref()
            .and_then(|c| crate::worktree::with_setup(c, &self.config.command, &self.config.args))
            .unwrap_or_else(|| (self.config.command.clone(), self.config.args.clone()));
        let req = SpawnRequest {
            command,
            args,
            cwd: self.config.cwd.clone(),
            env: self.config.env.clone(),
            cols: life.cols,
            rows: life.rows,
        };
        let observer: Arc<dyn RunObserver> = Arc::new(Observer(self.me.clone()));
        let recorder = self.begin_recording(&req);
        let run = Run::start(
            &req,
            self.config.scrollback,
            self.rules.clone(),
            observer,
            recorder.clone(),
        )
        .map_err(|e| {
            if let Some(recorder) = &recorder {
                recorder.marker(format!("exit:spawn failed: {e}"));
                recorder.finish();
            }
            SupervisorError::Spawn(self.config.id.clone(), e.to_string())
        })?;
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
        Ok(())
    }

    /// A new recording for the run `req` starts, unless the slot is not recorded. A recording
    /// that cannot be opened is logged and the slot runs unrecorded.
    fn begin_recording(&self, req: &SpawnRequest) -> Option<crate::recording::Recorder> {
        let recordings = self.config.recordings.as_ref()?;
        let mut command = vec![req.command.clone()];
        command.extend(req.args.iter().cloned());
        let command = command.join(" ");
        match recordings.begin(&self.config.id, req.cols, req.rows, &command) {
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
        if let Some(run) = run {
            run.resize(cols, rows)
                .await
                .map_err(|e| SupervisorError::Input(self.config.id.clone(), e.to_string()))?;
        }
        Ok(())
    }

    fn set_state(&self, state: SemanticState, detail: StateDetail) {
        let (prev, prev_since) = {
            let view = self.state.borrow();
            (view.state, view.since)
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
        if prev != state || matches!(state, SemanticState::Confirming | SemanticState::Error) {
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

/// The parser thread's way back into the slot, without keeping it alive.
struct Observer(Weak<Slot>);

impl RunObserver for Observer {
    fn state_changed(&self, t: &Transition) {
        if let Some(slot) = self.0.upgrade() {
            slot.set_state(t.state, t.detail.clone());
        }
    }

    fn exited(&self, exit: &ExitInfo) {
        let Some(slot) = self.0.upgrade() else { return };
        {
            let mut life = lock(&slot.life);
            life.status = SlotStatus::Exited;
            life.exit = Some(exit.clone());
        }
        if let Some(tracker) = &slot.worktree {
            tracker.refresh();
        }
        let _ = slot.events.send(SlotEvent::SlotExited {
            slot_id: slot.config.id.clone(),
            code: exit.code,
            signal: exit.signal.clone(),
        });
    }
}
