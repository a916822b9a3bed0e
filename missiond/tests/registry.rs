//! Slots outlive the daemon: the registry of slots created at run time, their restore after
//! SIGTERM and after SIGKILL of the daemon, the last screen in the scrollback, a corrupt
//! registry moved aside, config slots winning over recorded ones, and `rm` forgetting.

mod support;

use missiond_core::protocol::{Restored, SlotInfo, SlotStatus};
use std::path::{Path, PathBuf};
use support::daemon::{alive, poll, Daemon, STEP};

fn registry_path(d: &Daemon) -> PathBuf {
    d.dir().join("state/missiond/slots.json")
}

fn screen_path(d: &Daemon, id: &str) -> PathBuf {
    d.dir().join(format!("state/missiond/screens/{id}.ansi"))
}

/// The ids the registry file lists.
fn recorded_ids(d: &Daemon) -> Vec<String> {
    let text = std::fs::read_to_string(registry_path(d)).unwrap_or_default();
    if text.is_empty() {
        return Vec::new();
    }
    let file: serde_json::Value = serde_json::from_str(&text).expect("the registry is JSON");
    assert_eq!(file["version"], 1, "{text}");
    file["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| s["spec"]["id"].as_str().expect("id").to_string())
        .collect()
}

/// The registry's record of slot `id`.
fn record_of(d: &Daemon, id: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(registry_path(d)).ok()?;
    let file: serde_json::Value = serde_json::from_str(&text).ok()?;
    file["slots"]
        .as_array()?
        .iter()
        .find(|s| s["spec"]["id"] == id)
        .cloned()
}

/// Waits until the registry records slot `id` as not running (an exit is recorded a moment
/// after it happened).
fn wait_recorded_exited(d: &Daemon, id: &str) {
    let done = poll(STEP, || record_of(d, id).filter(|r| r["running"] == false));
    assert!(
        done.is_some(),
        "{id} never recorded as exited: {:?}",
        record_of(d, id)
    );
}

/// Creates a slot through REST.
fn create(d: &Daemon, body: serde_json::Value) -> SlotInfo {
    let (status, text) = d.http(
        "POST",
        "/api/slots",
        Some(&d.token),
        Some(("application/json", body.to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{text}");
    serde_json::from_str(&text).expect("slot info")
}

/// The slot's scrollback and screen as text.
fn scrollback(d: &Daemon, id: &str) -> String {
    d.cli_ok(&["screen", id, "--scrollback"])
}

fn wait_listed(d: &Daemon, id: &str, what: &str, pred: impl Fn(&SlotInfo) -> bool) -> SlotInfo {
    poll(STEP, || {
        d.slots().into_iter().find(|s| s.id == id).filter(&pred)
    })
    .unwrap_or_else(|| {
        panic!(
            "slot {id} never was {what}: {:?}\nlog:\n{}",
            d.slots(),
            d.log()
        )
    })
}

fn wait_gone(pid: u32) {
    assert!(
        poll(STEP, || (!alive(pid)).then_some(())).is_some(),
        "process {pid} outlived its daemon"
    );
}

fn wait_file_contains(path: &Path, what: &str) {
    let found = poll(STEP, || {
        std::fs::read(path)
            .ok()
            .filter(|b| String::from_utf8_lossy(b).contains(what))
    });
    assert!(found.is_some(), "{} never held {what:?}", path.display());
}

fn shell(id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "command": "sh",
        "env": {"PS1": "$ "},
        "cols": 90,
        "rows": 20,
    })
}

#[test]
fn a_shell_slot_comes_back_after_sigterm_and_after_sigkill() {
    let mut d = Daemon::start();
    let first = create(&d, shell("sh1"));
    create(
        &d,
        serde_json::json!({"id": "done", "command": "sh", "args": ["-c", "echo finished; exit 3"]}),
    );
    d.wait_slot("done", "exited", |s| s.status == SlotStatus::Exited);
    wait_recorded_exited(&d, "done");
    d.cli_ok(&["resize", "sh1", "100x30"]);
    d.cli_ok(&["send", "sh1", "--enter", "echo marker-$((40+2))"]);
    d.wait_screen("sh1", "the echo", |t| t.contains("marker-42"));
    assert_eq!(recorded_ids(&d), ["done", "sh1"]);

    // SIGTERM: the daemon ends its slots, and the next one brings them back.
    d.stop();
    wait_gone(first.pid.expect("pid"));
    d.start_again();
    let second = wait_listed(&d, "sh1", "running again", |s| {
        s.status == SlotStatus::Running
    });
    assert_eq!(second.restored, Some(Restored::Restarted));
    assert_ne!(second.pid, first.pid);
    assert_eq!((second.cols, second.rows), (100, 30), "the size is kept");
    // Restarting a program is in the audit trail, by the daemon itself.
    let audit: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["--json", "audit", "--slot", "sh1"])).expect("audit");
    let launches: Vec<&serde_json::Value> = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "launch")
        .collect();
    assert_eq!(launches.len(), 2, "{audit}");
    assert!(
        launches.iter().any(|e| e["actor"]["client"] == "config"),
        "{audit}"
    );
    let done = d.slot("done");
    assert_eq!(
        done.status,
        SlotStatus::Exited,
        "an exited slot stays exited"
    );
    assert_eq!(done.restored, None);
    assert!(done.pid.is_none());
    // The last screen is in the scrollback, above the new run's output.
    let history = scrollback(&d, "sh1");
    assert!(history.contains("marker-42"), "{history}");
    d.cli_ok(&["send", "sh1", "--enter", "echo after-$((1+1))"]);
    let history = d.wait_screen("sh1", "the new run answering", |t| t.contains("after-2"));
    assert!(
        !history.contains("marker-42"),
        "the earlier screen is only in the scrollback"
    );
    let all = scrollback(&d, "sh1");
    let (earlier, later) = (all.find("marker-42"), all.rfind("after-2"));
    assert!(earlier < later, "earlier screen first:\n{all}");

    // SIGKILL: no chance to clean up; the guard ends the program, the registry has the slot
    // and the screen saved once the output paused.
    wait_file_contains(&screen_path(&d, "sh1"), "after-2");
    d.kill_hard();
    wait_gone(second.pid.expect("pid"));
    d.start_again();
    let third = wait_listed(&d, "sh1", "running after the crash", |s| {
        s.status == SlotStatus::Running
    });
    assert_eq!(third.restored, Some(Restored::Restarted));
    assert_ne!(third.pid, second.pid);
    let history = scrollback(&d, "sh1");
    assert!(
        history.contains("marker-42") && history.contains("after-2"),
        "{history}"
    );
    assert_eq!(d.slot("done").status, SlotStatus::Exited);

    // `rm` forgets for good.
    d.cli_ok(&["rm", "sh1"]);
    assert_eq!(recorded_ids(&d), ["done"]);
    assert!(!screen_path(&d, "sh1").exists());
    d.stop();
    d.start_again();
    wait_listed(&d, "done", "listed", |_| true);
    assert!(d.slots().iter().all(|s| s.id != "sh1"), "{:?}", d.slots());
}

#[test]
fn a_corrupt_registry_is_moved_aside_and_the_daemon_starts() {
    let mut d = Daemon::start();
    create(&d, shell("keep"));
    d.stop();
    let path = registry_path(&d);
    std::fs::write(&path, b"{\"version\": 1, \"slots\": [ truncated").expect("write");
    d.start_again();
    assert!(d.log().contains("moved it to"), "{}", d.log());
    let aside: Vec<PathBuf> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("state dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("slots.json.unreadable-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(&aside[0]).expect("moved file"),
        b"{\"version\": 1, \"slots\": [ truncated",
        "kept as it was"
    );
    assert!(d.slots().is_empty());
    // The daemon works and records again.
    create(&d, shell("fresh"));
    assert_eq!(recorded_ids(&d), ["fresh"]);
}

#[test]
fn a_config_slot_wins_over_a_recorded_one_of_the_same_id() {
    let mut d = Daemon::start();
    create(
        &d,
        serde_json::json!({"id": "dup", "command": "sh", "args": ["-c", "echo from-registry; exec cat"]}),
    );
    d.wait_screen("dup", "its output", |t| t.contains("from-registry"));
    d.stop();
    d.options.extra_toml = "[[slots]]\nid = \"dup\"\ncommand = \"sh\"\nargs = [\"-c\", \"echo from-config; exec cat\"]\n".into();
    d.start_again();
    assert!(
        d.log()
            .contains("slot 'dup' is both in the config file and in the registry"),
        "{}",
        d.log()
    );
    d.wait_screen("dup", "the config's program", |t| t.contains("from-config"));
    assert_eq!(recorded_ids(&d), ["dup"], "the record is kept, not dropped");
    assert!(d.slot("dup").restored.is_none());
    d.cli_ok(&["rm", "dup"]);
    assert!(recorded_ids(&d).is_empty(), "rm forgets the record too");
}

/// A stand-in `claude` (profile claude-code by its name) that prints its arguments, fails at
/// once when asked to resume the conversation `gone`, and otherwise keeps running.
fn fake_claude(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let path = bin.join("claude");
    std::fs::write(
        &path,
        "#!/bin/sh\n\
         if [ \"$1\" = --version ]; then echo '9.9.9 (Claude Code)'; exit 0; fi\n\
         echo \"args: $*\"\n\
         case \" $* \" in *' --resume gone '*) echo 'No conversation found'; exit 1;; esac\n\
         exec cat\n",
    )
    .expect("write the fake claude");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn claude_code_resumes_its_conversation_or_starts_afresh_when_it_cannot() {
    let mut d = Daemon::start();
    d.stop();
    let claude = fake_claude(d.dir());
    let record = |id: &str, session: &str| {
        serde_json::json!({
            "spec": {
                "id": id,
                "command": claude.display().to_string(),
                "args": ["--model", "m", "--session-id", "old", "--continue"],
                "cwd": d.dir().display().to_string(),
            },
            "cols": 100,
            "rows": 30,
            "running": true,
            "sessionId": session,
        })
    };
    let file = serde_json::json!({
        "version": 1,
        "slots": [record("kept", "sess-1"), record("lost", "gone")],
    });
    std::fs::create_dir_all(registry_path(&d).parent().expect("dir")).expect("state dir");
    std::fs::write(registry_path(&d), file.to_string()).expect("write the registry");
    d.start_again();

    let kept = wait_listed(&d, "kept", "running", |s| s.status == SlotStatus::Running);
    assert_eq!(kept.restored, Some(Restored::Resumed), "{kept:?}");
    d.wait_screen("kept", "the resume arguments", |t| {
        // (after the `--settings` of the hooks: the fake is named claude)
        t.contains("--model m --resume sess-1")
    });

    // The conversation `gone` cannot be resumed: Claude Code fails and is started afresh,
    // with the slot's own arguments.
    let lost = wait_listed(&d, "lost", "started afresh", |s| {
        s.restored == Some(Restored::Restarted) && s.status == SlotStatus::Running
    });
    assert!(lost.pid.is_some());
    d.wait_screen("lost", "the fresh start", |t| {
        t.contains("--model m --session-id old --continue")
    });
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(registry_path(&d)).expect("registry"))
            .expect("json");
    let lost_record = file["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .find(|s| s["spec"]["id"] == "lost")
        .expect("lost is recorded");
    // The conversation that could not be resumed is forgotten; the fresh start's own
    // `--session-id old` is the slot's session now.
    assert_eq!(
        lost_record.get("sessionId").and_then(|v| v.as_str()),
        Some("old"),
        "{lost_record}"
    );
}

/// When a machine shuts down, its programs and the daemon get SIGTERM together: a program
/// ended that way comes back, while one the user killed stays exited.
#[test]
fn programs_ended_with_the_daemon_come_back_and_killed_ones_stay_exited() {
    let mut d = Daemon::start();
    let cat = |id: &str| serde_json::json!({"id": id, "command": "sh", "args": ["-c", "exec cat"]});
    let ended = create(&d, cat("ended"));
    create(&d, cat("killed"));
    d.cli_ok(&["kill", "killed"]);
    wait_recorded_exited(&d, "killed");
    // SAFETY: signalling a process this test started (through the daemon).
    unsafe {
        libc::kill(ended.pid.expect("pid") as i32, libc::SIGTERM);
    }
    d.stop();
    d.start_again();
    let back = wait_listed(&d, "ended", "running again", |s| {
        s.status == SlotStatus::Running
    });
    assert_eq!(back.restored, Some(Restored::Restarted));
    wait_listed(&d, "killed", "listed", |_| true);
    assert_eq!(d.slot("killed").status, SlotStatus::Exited);
}
