//! Issue 15's acceptance with the real Claude Code: a permission dialog in a slot reaches a
//! `[[notify]]` receiver (a real HTTP server on 127.0.0.1) within 2 s, and answering it as the
//! viewer does leaves an audit entry naming who answered which option of which dialog.
//!
//! Needs the pinned CLI: run `scripts/install-e2e-tools.sh` once.

mod support;

use missiond_core::protocol::audit::{AuditAction, AuditEntry, ClientKind};
use missiond_core::protocol::{SemanticState, SlotInfo};
use serde_json::json;
use std::time::Duration;
use support::claude_env::ClaudeEnvBuilder;
use support::daemon::{Daemon, DaemonOptions};
use support::receiver::{Mode, Receiver};
use support::stand_in::{StandIn, Turn};

const STEP: Duration = Duration::from_secs(60);
const SLOT: &str = "cc";

/// One Claude Code at a time: its start-up is heavy and the machine's cores are shared.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Claude Code in slot [`SLOT`] against `stand_in`, waited for until idle. Keep the returned
/// environment alive as long as the slot runs.
fn launch_claude(daemon: &Daemon, stand_in: &StandIn) -> support::claude_env::ClaudeEnv {
    let env = ClaudeEnvBuilder::new(stand_in.base_url())
        .claude_dir(daemon.dir().join("claude"))
        .build();
    let (cmd, args, slot_env, cwd) = env.launch();
    let spec = json!({
        "id": SLOT, "command": cmd, "args": args, "cwd": cwd, "env": slot_env,
        "profile": "claude-code", "cols": 120, "rows": 40,
    });
    let (status, body) = daemon.http(
        "POST",
        "/api/slots",
        Some(&daemon.token),
        Some(("application/json", spec.to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{body}");
    daemon.cli_ok(&["wait", SLOT, "--state", "idle", "--timeout", "60"]);
    env
}

#[test]
fn a_real_permission_dialog_is_notified_within_2_s_and_its_answer_is_audited() {
    let _serial = serial();
    let outside = tempfile::tempdir().expect("temp dir");
    let flag = outside.path().join("flag.txt");
    let command = format!("touch {}", flag.display());
    let stand_in = StandIn::start(vec![
        Turn::bash(&command, "Create the flag file"),
        Turn::text("The flag is set."),
    ]);
    let receiver = Receiver::start(Mode::Answer);
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "[[notify]]\nurl = {:?}\non = [\"confirming\", \"idle\"]\nmin_busy_secs = 0\n",
            receiver.url
        ),
        ..Default::default()
    });
    let _env = launch_claude(&daemon, &stand_in);

    daemon.cli_ok(&["prompt", SLOT, "set the flag", "--wait", "--timeout", "60"]);
    let info: SlotInfo = daemon.slot(SLOT);
    assert_eq!(info.state, SemanticState::Confirming, "{info:?}");
    let got = receiver.wait(1, STEP);
    let event = got[0].json();
    assert_eq!(event["event"], "confirming", "{event}");
    assert_eq!(event["slot"], SLOT);
    assert!(
        event["dialog"]["body"]
            .as_str()
            .unwrap_or("")
            .contains(&command),
        "the dialog's body is the command: {event}"
    );
    let delay = got[0].at_ms.saturating_sub(info.state_since);
    eprintln!("notification arrived {delay} ms after the slot entered confirming");
    assert!(delay < 2000, "the notification took {delay} ms");

    // Answer as the viewer's option button does.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/api/slots/{SLOT}/confirm", daemon.url))
            .bearer_auth(&daemon.token)
            .header("x-missiond-client", "viewer")
            .header("user-agent", "Mozilla/5.0 (iPhone) missiond-test")
            .json(&json!({"option": 1}))
            .send()
            .await
            .expect("confirm")
            .status()
    });
    assert!(status.is_success(), "{status}");
    let out = daemon.cli_ok(&["--json", "audit", "--slot", SLOT]);
    let entries: Vec<AuditEntry> = serde_json::from_str(&out).expect("entries");
    let answer = entries
        .iter()
        .find(|e| e.action == AuditAction::Confirm)
        .unwrap_or_else(|| panic!("no confirm in {entries:#?}"));
    assert_eq!(answer.actor.client, ClientKind::Viewer);
    let option = answer.option.as_ref().expect("option");
    assert_eq!(option.n, 1);
    assert!(option.label.starts_with("Yes"), "{option:?}");
    let dialog = answer.dialog.as_ref().expect("dialog");
    assert!(dialog.body.contains(&command), "{dialog:?}");
    let prompt = entries
        .iter()
        .find(|e| e.action == AuditAction::Prompt)
        .expect("the prompt is recorded");
    assert_eq!(prompt.text.as_deref(), Some("set the flag"));
    assert_eq!(prompt.actor.client, ClientKind::Cli);
    let table = daemon.cli_ok(&["audit", "--slot", SLOT]);
    eprintln!("{table}");
    assert!(table.contains("1. Yes"), "{table}");
    support::daemon::poll(STEP, || flag.exists().then_some(()))
        .expect("the command ran after the answer");
    // The turn ends: `idle`, with how long it was busy.
    let got = receiver.wait(2, STEP);
    let idle = got[1].json();
    assert_eq!(idle["event"], "idle", "{idle}");
    assert!(idle["busySecs"].is_u64(), "{idle}");
    assert_eq!(receiver.received().len(), 2, "one event per change");
}

#[test]
fn a_task_completed_in_a_real_claude_slot_is_notified() {
    let _serial = serial();
    let subject = "Write the release notes";
    let stand_in = StandIn::start(vec![
        Turn::task_create(subject, "Write them", "Writing the release notes"),
        Turn::task_update("1", "completed"),
        Turn::text("Done."),
    ]);
    let receiver = Receiver::start(Mode::Answer);
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: format!(
            "[[notify]]\nurl = {:?}\non = [\"task_completed\"]\nslots = [\"{SLOT}\"]\n",
            receiver.url
        ),
        ..Default::default()
    });
    let _env = launch_claude(&daemon, &stand_in);
    daemon.cli_ok(&[
        "prompt",
        SLOT,
        "write the notes",
        "--wait",
        "--timeout",
        "60",
    ]);
    let event = receiver.wait(1, STEP)[0].json();
    assert_eq!(event["event"], "task_completed", "{event}");
    assert_eq!(event["slot"], SLOT);
    assert_eq!(event["task"], subject);
    assert!(
        event["message"].as_str().unwrap_or("").contains(subject),
        "{event}"
    );
}
