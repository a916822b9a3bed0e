//! Upgrade in place: the running daemon hands its slots to a new binary by `execve`, keeping
//! every program's pseudo-terminal open; the new image carries on reading them.
//!
//! The old image stops each reader at a chunk boundary (the output written meanwhile waits in
//! the terminal), snapshots each screen with its scrollback, writes them with every slot's
//! settings to a handover file, clears close-on-exec on the terminals' master descriptors, the
//! listening socket and the orphan guard's pipe, and executes the new binary with
//! `serve --handover FILE`. `execve` keeps the process id, so the programs stay its children.
//! The new image rebuilds each screen from its snapshot and reads on from the first byte the
//! old one did not read: nothing is lost or shown twice.

use super::{Supervisor, SupervisorError};
use crate::protocol::{Restored, SemanticState, SlotInfo, SlotSpec, SlotStatus, StateDetail};
use crate::worktree::Checkout;
use serde::{Deserialize, Serialize};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

/// The handover format; `missiond __handover-version` prints it, and an upgrade is refused
/// when the new binary does not print the same.
pub const HANDOVER_VERSION: u32 = 1;

/// Everything the new image needs.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handover {
    pub version: u32,
    pub listener_fd: RawFd,
    #[serde(default)]
    pub guard: Option<HandedGuard>,
    pub slots: Vec<HandedSlot>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandedGuard {
    pub fd: RawFd,
    pub pid: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandedSlot {
    /// As recorded (run-time slots) or as configured.
    pub spec: SlotSpec,
    pub recorded: bool,
    pub worktree: Option<Checkout>,
    pub cols: u16,
    pub rows: u16,
    pub restarts: u32,
    pub session_id: Option<String>,
    /// The secret the program's hooks present, whether they are on, the last usage figures.
    #[serde(default)]
    pub hook_secret: Option<String>,
    #[serde(default)]
    pub hooks_on: bool,
    #[serde(default)]
    pub usage: Option<crate::protocol::signals::Usage>,
    pub restored: Option<Restored>,
    /// The semantic state as the old image read it, kept until the screen changes.
    pub state: SemanticState,
    #[serde(default)]
    pub state_detail: StateDetail,
    pub state_since: u64,
    pub run: Option<HandedRun>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandedRun {
    pub pid: u32,
    pub master_fd: RawFd,
    pub started_at: Option<u64>,
    /// Scrollback and screen as ANSI, as of the last byte read.
    pub screen: String,
}

/// What [`Supervisor::hand_over`] paused, to undo if the `execve` fails.
pub struct Paused {
    runs: Vec<Arc<super::Run>>,
    fds: Vec<RawFd>,
}

impl Paused {
    /// Reads again and closes the kept descriptors on exec again: the old image serves on.
    pub fn resume(self) {
        for fd in &self.fds {
            let _ = crate::pty::set_cloexec(*fd, true);
        }
        for run in &self.runs {
            if let Err(e) = run.resume_reading() {
                tracing::error!("reading a slot again after a failed upgrade: {e}");
            }
        }
    }
}

impl Paused {
    /// Ends each paused run's recording with an `upgrade:handed over` marker and waits (up to
    /// `within`) until they are on disk: the new image records the runs on from the
    /// handed-over screen, in new files. If the upgrade then fails, the runs go on unrecorded.
    pub fn close_recordings(
        &self,
        recordings: Option<&crate::recording::Recordings>,
        within: Duration,
    ) {
        for run in &self.runs {
            if let Some(recorder) = run.recorder() {
                recorder.marker("upgrade:handed over");
                recorder.finish();
            }
        }
        if let Some(recordings) = recordings {
            if !recordings.wait_closed(within) {
                tracing::warn!("some recordings were still being written at the upgrade");
            }
        }
    }
}

impl Supervisor {
    /// Stops reading every running slot, snapshots it, and makes its terminal survive
    /// `execve`. On error everything is resumed. `listener_fd` and the guard's pipe are kept
    /// across `execve` too.
    pub async fn hand_over(
        &self,
        listener_fd: RawFd,
    ) -> Result<(Handover, Paused), SupervisorError> {
        let mut paused = Paused {
            runs: Vec::new(),
            fds: Vec::new(),
        };
        let mut slots = Vec::new();
        for slot in self.all() {
            let info = slot.info();
            let run = slot.live_run().ok();
            let handed_run = match run {
                Some(run) => match hand_over_run(&run, &info).await {
                    Ok(handed) => {
                        paused.runs.push(run);
                        paused.fds.push(handed.master_fd);
                        Some(handed)
                    }
                    Err(e) => {
                        // This run was not paused (or could not be): only the others resume.
                        paused.resume();
                        return Err(SupervisorError::Conflict(format!(
                            "slot '{}' cannot be handed over: {e}",
                            info.id
                        )));
                    }
                },
                None => None,
            };
            let recorded = slot.recorded_spec();
            slots.push(HandedSlot {
                spec: recorded.clone().unwrap_or_else(|| configured_spec(&slot)),
                recorded: recorded.is_some(),
                worktree: slot.config.worktree.clone(),
                cols: info.cols,
                rows: info.rows,
                restarts: info.restarts,
                session_id: slot.session_id(),
                hook_secret: Some(slot.signals().secret()),
                hooks_on: slot.signal_stats().hooks_on,
                usage: info.usage.clone(),
                restored: info.restored,
                state: info.state,
                state_detail: info.state_detail.clone(),
                state_since: info.state_since,
                run: handed_run,
            });
        }
        let mut fds = vec![listener_fd];
        let guard = self.shared.guard.as_ref().and_then(|g| g.handover_parts());
        if let Some((fd, _)) = guard {
            fds.push(fd);
        }
        for fd in fds {
            if let Err(e) = crate::pty::set_cloexec(fd, false) {
                paused.resume();
                return Err(SupervisorError::Conflict(format!(
                    "cannot keep a descriptor across execve: {e}"
                )));
            }
            paused.fds.push(fd);
        }
        Ok((
            Handover {
                version: HANDOVER_VERSION,
                listener_fd,
                guard: guard.map(|(fd, pid)| HandedGuard { fd, pid }),
                slots,
            },
            paused,
        ))
    }

    /// In the new image: takes over the slots of `handover`. Blocking (worktree stats).
    /// A slot that cannot be taken over is reported; its program is left to the guard.
    pub fn take_over(&self, slots: Vec<HandedSlot>) {
        for handed in slots {
            let id = handed.spec.id.clone();
            if let Err(e) = self.take_over_slot(handed) {
                tracing::error!(slot = %id, "not taken over after the upgrade: {e}");
                eprintln!("missiond: slot '{id}' not taken over after the upgrade: {e}");
            }
        }
    }

    fn take_over_slot(&self, handed: HandedSlot) -> Result<SlotInfo, SupervisorError> {
        let mut spec = handed.spec.clone();
        spec.cols = Some(handed.cols);
        spec.rows = Some(handed.rows);
        spec.autostart = false;
        let slot = self.create_slot(&spec, handed.worktree.clone())?;
        if handed.recorded && self.registry().is_some() {
            slot.record_with(handed.spec.clone(), self.recorder());
        }
        slot.set_session_id(handed.session_id.clone());
        if let Some(secret) = handed.hook_secret.clone() {
            slot.signals()
                .adopt(secret, handed.hooks_on, handed.usage.clone());
        }
        if let Some(restored) = handed.restored {
            slot.set_restored(restored);
        }
        self.insert(&slot)?;
        if let Some(registry) = self.registry() {
            registry.release(slot.id());
        }
        if let Some(run) = handed.run {
            // SAFETY: the previous image kept this descriptor open across execve for us;
            // nothing else in this process owns it.
            let master = unsafe { OwnedFd::from_raw_fd(run.master_fd) };
            let observer = slot.observer();
            // The run goes on in a new recording that starts from the handed-over screen.
            let command = std::iter::once(slot.config.command.clone())
                .chain(slot.config.args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ");
            let recorder = slot.begin_recording_of(handed.cols, handed.rows, &command);
            if let Some(recorder) = &recorder {
                recorder.marker("upgrade:continued");
            }
            let adopted = super::Run::adopt(
                (run.pid, master),
                (handed.cols, handed.rows),
                run.screen.as_bytes(),
                slot.config.scrollback,
                self.shared.rules.rules(slot.config.profile),
                observer,
                recorder,
            )
            .map_err(|e| SupervisorError::Spawn(slot.id().to_string(), e))?;
            slot.adopt_run(adopted, run.started_at, handed.restarts);
            slot.carry_state(super::StateView {
                state: handed.state,
                detail: handed.state_detail,
                since: handed.state_since,
            });
        }
        Ok(slot.info())
    }
}

async fn hand_over_run(run: &Arc<super::Run>, info: &SlotInfo) -> Result<HandedRun, String> {
    if info.status == SlotStatus::Exited {
        return Err("it has exited".into());
    }
    let master_fd = run.master_fd().ok_or("its terminal has no descriptor")?;
    let pausing = run.clone();
    let stopped = tokio::task::spawn_blocking(move || {
        // Keys queued for the program reach its terminal before this process is replaced.
        pausing.flush_input(Duration::from_secs(2)) && pausing.pause_reading(Duration::from_secs(2))
    })
    .await
    .unwrap_or(false);
    if !stopped {
        return Err("its output reader did not stop".into());
    }
    let handed = async {
        let snapshot = run.snapshot().await.ok_or("its screen is gone")?;
        crate::pty::set_cloexec(master_fd, false).map_err(|e| e.to_string())?;
        Ok::<_, String>(snapshot)
    }
    .await;
    let snapshot = match handed {
        Ok(snapshot) => snapshot,
        Err(e) => {
            let _ = run.resume_reading();
            return Err(e);
        }
    };
    Ok(HandedRun {
        pid: run.pid(),
        master_fd,
        started_at: info.started_at,
        screen: String::from_utf8_lossy(&snapshot.ansi).into_owned(),
    })
}

/// The spec a config slot would be created with again (it has no recorded one).
fn configured_spec(slot: &super::Slot) -> SlotSpec {
    let c = &slot.config;
    let mut spec = SlotSpec::new(c.id.clone(), c.command.clone());
    spec.args = c.args.clone();
    spec.cwd = Some(c.cwd.display().to_string());
    spec.env = c.env.clone();
    spec.profile = Some(c.profile);
    spec.restart = c.restart;
    spec.scrollback = Some(c.scrollback);
    spec
}
