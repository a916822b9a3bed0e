//! Bringing back the slots of the registry when the daemon starts again (after a stop, a
//! crash or a reboot): Claude Code resumes its conversation, other programs start afresh,
//! slots that had exited stay exited, and the last screen goes into the new run's scrollback.

use super::slot::{Recorder, Slot};
use super::{Shared, Supervisor, SupervisorError};
use crate::protocol::{Profile, Restored, SlotInfo};
use crate::registry::{Record, Registry};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// A resumed Claude Code that exits with a failure this soon could not resume (an unknown
/// or unreadable conversation): it is started afresh.
const RESUME_GRACE: Duration = Duration::from_secs(10);
/// How long the exit of a program is held before it is recorded (see [`Recorder::slot_exited`]).
const EXIT_SETTLE: Duration = Duration::from_secs(3);

/// Claude Code's arguments to carry on conversation `session_id`: any `--session-id X`,
/// `--resume [X]` / `-r [X]` and `--continue` / `-c` are dropped (they would pick another
/// conversation), then `--resume <session_id>` is added.
pub fn resume_args(args: &[String], session_id: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut rest = args.iter().peekable();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--session-id" => {
                rest.next();
            }
            // The conversation is optional after --resume: a following option is not it.
            "--resume" | "-r" => {
                if rest.peek().is_some_and(|next| !next.starts_with('-')) {
                    rest.next();
                }
            }
            "--continue" | "-c" => {}
            a if a.starts_with("--session-id=") || a.starts_with("--resume=") => {}
            _ => out.push(arg.clone()),
        }
    }
    out.push("--resume".to_string());
    out.push(session_id.to_string());
    out
}

/// The supervisor's side of the registry, as the slots see it.
pub(super) struct RegistryLink(pub(super) Weak<Shared>);

impl Recorder for RegistryLink {
    fn slot_changed(&self) {
        if let Some(shared) = self.0.upgrade() {
            shared.persist();
        }
    }

    fn slot_exited(&self) {
        let link = Weak::clone(&self.0);
        let spawned = std::thread::Builder::new()
            .name("registry-exit".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                std::thread::sleep(EXIT_SETTLE);
                if let Some(shared) = link.upgrade() {
                    shared.persist();
                }
            });
        if spawned.is_err() {
            self.slot_changed();
        }
    }

    fn save_screen(&self, id: &str, lines: &[u8]) {
        if let Some(registry) = self.0.upgrade().and_then(|s| s.registry.get().cloned()) {
            registry.save_screen(id, lines);
        }
    }
}

impl Shared {
    /// Writes the registry as of now (nothing without one).
    pub(super) fn persist(&self) {
        let Some(registry) = self.registry.get() else {
            return;
        };
        registry.write(|| {
            super::run::lock(&self.slots)
                .values()
                .filter_map(|slot| slot.record())
                .collect()
        });
    }
}

impl Supervisor {
    /// From now on, slots created with [`Supervisor::create`] are recorded in `registry`.
    pub fn attach_registry(&self, registry: Arc<Registry>) {
        let _ = self.shared.registry.set(registry);
    }

    pub fn registry(&self) -> Option<&Arc<Registry>> {
        self.shared.registry.get()
    }

    /// The daemon is stopping: keeps each recorded slot's last screen, then stops recording
    /// (the kills that follow, and programs the system ends with the daemon, are not the
    /// slots' fate: the next daemon restores them). Called as soon as the stop signal comes.
    pub async fn keep_for_restart(&self) {
        let Some(registry) = self.shared.registry.get().cloned() else {
            return;
        };
        if registry.is_frozen() {
            return;
        }
        for slot in self.all() {
            let Some(run) = slot.run().filter(|_| slot.record().is_some()) else {
                continue;
            };
            if let Some(lines) = run.inspect(|screen, _| screen.lines_ansi()).await {
                registry.save_screen(slot.id(), &lines);
            }
        }
        registry.freeze();
    }

    /// Opens the registry in `state_dir`, attaches it, and returns the records to restore.
    /// An unreadable file is reported (log and stderr); a record whose id the config file
    /// defines too is reported and left alone (the config wins; the record stays in the file
    /// until `missiond rm`).
    pub fn open_registry(
        &self,
        state_dir: &std::path::Path,
        config_ids: &std::collections::BTreeSet<String>,
    ) -> Vec<Record> {
        let (registry, loaded) = Registry::open(state_dir);
        for warning in &loaded.warnings {
            tracing::error!("{warning}");
            eprintln!("missiond: {warning}");
        }
        let mut restore = Vec::new();
        for record in loaded.records {
            if config_ids.contains(&record.spec.id) {
                let note = format!(
                    "slot '{}' is both in the config file and in the registry {}: the config's slot is used",
                    record.spec.id,
                    registry.path().display()
                );
                tracing::warn!("{note}");
                eprintln!("missiond: {note}");
            } else {
                restore.push(record.clone());
            }
            registry.hold(record);
        }
        self.attach_registry(Arc::new(registry));
        restore
    }

    /// Restores `records` in the background (the daemon answers meanwhile); a slot that cannot
    /// come back is reported and its record kept.
    pub fn restore_in_background(&self, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            for record in records {
                let id = record.spec.id.clone();
                match this.restore(record) {
                    Ok(info) => tracing::info!(
                        slot = %id,
                        restored = ?info.restored,
                        status = ?info.status,
                        "slot restored"
                    ),
                    Err(e) => {
                        tracing::error!(slot = %id, "not restored: {e}");
                        eprintln!("missiond: slot '{id}' not restored: {e}");
                    }
                }
            }
        });
    }

    /// Brings back one recorded slot: in its worktree (found again, never made anew), at its
    /// size, its program started unless it had exited. Blocking (git, for a worktree's
    /// stats); call it from a blocking task. On error the record stays in the registry.
    pub fn restore(&self, record: Record) -> Result<SlotInfo, SupervisorError> {
        let id = record.spec.id.clone();
        if let Some(c) = &record.worktree {
            if !c.path.is_dir() {
                return Err(SupervisorError::Invalid(format!(
                    "slot '{id}': its worktree {} is gone, so it was not restored (`missiond rm {id}` forgets it)",
                    c.path.display()
                )));
            }
        }
        let mut spec = record.spec.clone();
        spec.cols = Some(record.cols);
        spec.rows = Some(record.rows);
        spec.autostart = false;
        let slot = self.create_slot(&spec, record.worktree.clone())?;
        slot.record_with(record.spec.clone(), self.recorder());
        slot.set_session_id(record.session_id.clone());
        self.insert(&slot)?;
        if let Some(registry) = self.registry() {
            registry.release(&id);
        }
        if record.running {
            let earlier = self
                .registry()
                .and_then(|r| r.load_screen(&id))
                .unwrap_or_default();
            start_restored(&slot, record.session_id.as_deref(), earlier)?;
        }
        self.shared.persist();
        Ok(slot.info())
    }

    pub(super) fn recorder(&self) -> Arc<dyn Recorder> {
        Arc::new(RegistryLink(Arc::downgrade(&self.shared)))
    }
}

/// Starts a restored slot's program: Claude Code with `--resume` when its conversation is
/// known (afresh if that fails at once), anything else with its own command line.
fn start_restored(
    slot: &Arc<Slot>,
    session_id: Option<&str>,
    earlier: Vec<u8>,
) -> Result<(), SupervisorError> {
    let resume = session_id.filter(|_| slot.config.profile == Profile::ClaudeCode);
    let Some(session_id) = resume else {
        slot.set_restored(Restored::Restarted);
        return slot.start_restored(&slot.config.args, &earlier);
    };
    slot.set_restored(Restored::Resumed);
    slot.start_restored(&resume_args(&slot.config.args, session_id), &earlier)?;
    let Some(run) = slot.run() else { return Ok(()) };
    let slot = slot.clone();
    tokio::spawn(async move {
        let Ok(exit) = tokio::time::timeout(RESUME_GRACE, run.exited()).await else {
            return;
        };
        let current = slot.run().is_some_and(|r| Arc::ptr_eq(&r, &run));
        if exit.code == Some(0) || !current || !slot.wanted() {
            return;
        }
        tracing::warn!(
            slot = %slot.id(),
            ?exit,
            "Claude Code could not resume its conversation; starting it afresh"
        );
        slot.set_restored(Restored::Restarted);
        slot.set_session_id(None);
        if let Err(e) = slot.start_restored(&slot.config.args, &earlier) {
            tracing::warn!(slot = %slot.id(), "{e}");
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::resume_args;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resume_is_added_to_plain_arguments() {
        assert_eq!(resume_args(&[], "abc"), args(&["--resume", "abc"]));
        assert_eq!(
            resume_args(&args(&["--model", "opus"]), "abc"),
            args(&["--model", "opus", "--resume", "abc"])
        );
    }

    #[test]
    fn other_conversation_choices_are_dropped() {
        let given = args(&[
            "--session-id",
            "old",
            "--model",
            "opus",
            "--continue",
            "-c",
            "--resume",
            "older",
            "--session-id=x",
            "--resume=y",
            "-r",
            "z",
            "--verbose",
        ]);
        assert_eq!(
            resume_args(&given, "abc"),
            args(&["--model", "opus", "--verbose", "--resume", "abc"])
        );
    }

    #[test]
    fn a_resume_without_a_conversation_keeps_the_next_option() {
        assert_eq!(
            resume_args(&args(&["--resume", "--verbose"]), "abc"),
            args(&["--verbose", "--resume", "abc"])
        );
        assert_eq!(
            resume_args(&args(&["-r"]), "abc"),
            args(&["--resume", "abc"])
        );
    }
}
