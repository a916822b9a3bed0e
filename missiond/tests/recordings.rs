//! Recordings (issue 19): every run kept as an asciicast v2 file with markers, within limits.
//!
//! - The real Claude Code (pinned release) against the API stand-in: a Bash permission dialog
//!   answered with `missiond confirm` gives a recording whose markers hold the prompt, the
//!   dialog and the answer (by `cli`) at the times they happened, and whose output replayed
//!   through vt100 gives the slot's final screen. The recording is saved as
//!   `target/recordings-e2e/claude-permission.cast` (the browser test's fixture
//!   `web/tests/fixtures/claude-permission.cast` is a copy of one).
//! - A Claude Code task started through its task tools is a `task:started` marker.
//! - Tiny limits: the oldest runs go first, per slot and in total; a run alone over the slot's
//!   limit stops recording output and says so; `record = false` records nothing.
//!
//! Needs the pinned CLI: run `scripts/install-e2e-tools.sh` once.

mod support;

use std::time::Duration;

use missiond_core::protocol::recording::{RecordingUsage, RunSummary};
use missiond_core::protocol::{SemanticState, SlotStatus, StateReply};
use missiond_core::recording::cast::{self, Cast, Event};
use serde_json::json;
use support::claude_env::ClaudeEnvBuilder;
use support::daemon::{poll, Daemon, DaemonOptions};
use support::stand_in::{StandIn, Turn};

const STEP: Duration = Duration::from_secs(60);
const STEP_SECS: &str = "60";

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("unexpected JSON ({e}): {text}"))
}

fn runs(daemon: &Daemon, id: &str) -> Vec<RunSummary> {
    parse(&daemon.cli_ok(&["--json", "rec", "ls", id]))
}

/// Waits until run `run` of `id` is no longer being written.
fn wait_finished(daemon: &Daemon, id: &str, run: u64) -> RunSummary {
    poll(STEP, || {
        runs(daemon, id)
            .into_iter()
            .find(|r| r.run == run && !r.recording)
    })
    .unwrap_or_else(|| {
        panic!(
            "run {run} of {id} was never finished: {:?}\n{}",
            runs(daemon, id),
            daemon.log()
        )
    })
}

fn export(daemon: &Daemon, id: &str, run: u64) -> (String, Cast) {
    let text = daemon.cli_ok(&["rec", "export", id, "--run", &run.to_string()]);
    let cast = cast::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (text, cast)
}

fn markers(cast: &Cast) -> Vec<(f64, String)> {
    cast.events
        .iter()
        .filter_map(|e| match e {
            Event::Marker(t, label) => Some((*t, label.clone())),
            _ => None,
        })
        .collect()
}

/// The screen the recording ends on: its output through vt100 at its size, resizes applied.
fn replay(cast: &Cast) -> vt100::Parser {
    replay_until(cast, f64::INFINITY)
}

/// The screen a player shows when seeked to `until`: every event at or before that time.
fn replay_until(cast: &Cast, until: f64) -> vt100::Parser {
    let mut parser = vt100::Parser::new(cast.header.height, cast.header.width, 0);
    for event in &cast.events {
        match event {
            Event::Output(t, data) if *t <= until => parser.process(data.as_bytes()),
            Event::Resize(t, cols, rows) if *t <= until => {
                parser.screen_mut().set_size(*rows, *cols)
            }
            _ => {}
        }
    }
    parser
}

/// Wall-clock time (ms) of a marker: the run's start plus the marker's offset.
fn wall_ms(cast: &Cast, t: f64) -> i64 {
    let start = cast
        .header
        .missiond
        .as_ref()
        .expect("missiond header key")
        .started_at;
    start as i64 + (t * 1000.0).round() as i64
}

#[test]
fn a_claude_code_permission_dialog_answered_from_the_cli_is_recorded() {
    // A command with a side effect, so Claude Code asks before running it.
    let outside = tempfile::tempdir().expect("temp dir");
    let flag = outside.path().join("flag.txt");
    let stand_in = StandIn::start(vec![
        Turn::bash(format!("touch {}", flag.display()), "Create the flag file"),
        Turn::text("The command ran."),
    ]);
    // A daemon process of its own: Claude Code must not inherit the test runner's environment.
    let daemon = Daemon::start();
    let env = ClaudeEnvBuilder::new(stand_in.base_url())
        .claude_dir(daemon.dir().join("claude"))
        .build();
    let (command, args, env_vars, cwd) = env.launch();
    let spec = json!({
        "id": "cc", "command": command, "args": args, "cwd": cwd, "env": env_vars,
        "profile": "claude-code", "cols": 120, "rows": 40,
    });
    let (status, body) = daemon.http(
        "POST",
        "/api/slots",
        Some(&daemon.token),
        Some(("application/json", spec.to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{body}");
    let wait = |state: &str| -> StateReply {
        parse(&daemon.cli_ok(&[
            "--json",
            "wait",
            "cc",
            "--state",
            state,
            "--timeout",
            STEP_SECS,
        ]))
    };
    wait("idle");
    let reply: StateReply = parse(&daemon.cli_ok(&[
        "--json",
        "prompt",
        "cc",
        "run the command",
        "--wait",
        "--timeout",
        STEP_SECS,
    ]));
    assert_eq!(
        reply.state,
        SemanticState::Confirming,
        "{reply:?}\n{}",
        daemon.log()
    );
    let dialog = reply.state_detail.dialog.clone().expect("a dialog");
    let confirming_since = daemon.slot("cc").state_since;
    daemon.cli_ok(&["--json", "confirm", "cc", "1"]);
    daemon.wait_screen("cc", "the answer after the tool", |s| {
        s.contains("The command ran.")
    });
    assert!(flag.exists(), "the answered command ran");
    wait("idle");

    // While the run goes on, what happened so far is on disk within about a second: the
    // answer, and output that replays to the screen the slot shows.
    let mut last = String::new();
    poll(STEP, || {
        let (_, cast) = export(&daemon, "cc", 1);
        let answered = markers(&cast).iter().any(|(_, l)| l.starts_with("answer:"));
        last = replay(&cast).screen().contents();
        (answered && last == daemon.screen("cc").text).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the live recording never caught up; replayed:\n{last}\nscreen:\n{}",
            daemon.screen("cc").text
        )
    });
    assert!(last.contains("The command ran."), "{last}");
    assert!(runs(&daemon, "cc")[0].recording);

    daemon.cli_ok(&["kill", "cc"]);
    daemon.wait_slot("cc", "exited", |s| s.status == SlotStatus::Exited);
    wait_finished(&daemon, "cc", 1);
    let (text, cast) = export(&daemon, "cc", 1);
    let saved = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/recordings-e2e");
    std::fs::create_dir_all(&saved).expect("target dir");
    std::fs::write(saved.join("claude-permission.cast"), &text).expect("save the cast");

    // The header.
    assert_eq!((cast.header.width, cast.header.height), (120, 40));
    assert!(
        cast.header
            .command
            .as_deref()
            .is_some_and(|c| c.contains("claude")),
        "{:?}",
        cast.header
    );
    let origin = cast.header.missiond.clone().expect("origin");
    assert_eq!((origin.slot.as_str(), origin.run), ("cc", 1));

    // The markers, in order: prompt, confirming, the dialog, the answer by the CLI, the exit.
    let marks = markers(&cast);
    let find = |prefix: &str| {
        marks
            .iter()
            .position(|(_, l)| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} marker in {marks:#?}"))
    };
    let prompt = find("prompt:run the command");
    let confirming = find("state:confirming");
    let dialog_at = find("dialog:");
    let answer = find("answer:");
    let exit = find("exit:");
    assert!(
        prompt < confirming && confirming <= dialog_at && dialog_at < answer && answer < exit,
        "{marks:#?}"
    );
    let expected_dialog = missiond_core::recording::dialog_label(&dialog);
    assert_eq!(marks[dialog_at].1, expected_dialog);
    // A player seeked to the marker shows the dialog: the marker follows the output it was
    // read from (the History view's "Next dialog" relies on it).
    let at_dialog = replay_until(&cast, marks[dialog_at].0).screen().contents();
    assert!(
        at_dialog.contains(&dialog.title),
        "the screen at the dialog marker has no {:?}:\n{at_dialog}",
        dialog.title
    );
    assert!(expected_dialog.contains("|1. Yes"), "{expected_dialog}");
    assert_eq!(
        marks[answer].1,
        format!("answer:1 {} by cli", dialog.options[0].label)
    );
    // At the right times: the dialog when the slot entered confirming, the answer when the
    // audit trail says it was given.
    let dialog_ms = wall_ms(&cast, marks[dialog_at].0);
    assert!(
        (dialog_ms - confirming_since as i64).abs() < 1000,
        "dialog marker at {dialog_ms}, slot confirming since {confirming_since}"
    );
    let audit: Vec<serde_json::Value> = parse(&daemon.cli_ok(&["--json", "audit", "--slot", "cc"]));
    let confirm = audit
        .iter()
        .find(|e| e["action"] == "confirm")
        .expect("a confirm in the audit trail");
    let answer_ms = wall_ms(&cast, marks[answer].0);
    let audit_ms = confirm["time"].as_i64().expect("time");
    assert!(
        (answer_ms - audit_ms).abs() < 1000,
        "answer marker at {answer_ms}, audit entry at {audit_ms}"
    );
    // Input is not recorded: no event carries the prompt's keys except its marker.
    assert!(cast
        .events
        .iter()
        .all(|e| !matches!(e, Event::Output(_, d) if d == "run the command")));

    // The replayed final screen is the slot's final screen.
    let screen = daemon.screen("cc");
    let replayed = replay(&cast);
    assert_eq!(
        replayed.screen().contents(),
        screen.text,
        "replayed screen differs"
    );
    let (row, col) = replayed.screen().cursor_position();
    assert_eq!([row, col], screen.cursor);
    assert!(
        screen.text.contains("claude --"),
        "the exit message: {}",
        screen.text
    );

    // REST: the list and the file (read-only token too).
    let (status, body) = daemon.http(
        "GET",
        "/api/slots/cc/runs/1.cast",
        Some(&daemon.token),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body, text);
    let on_disk = daemon.dir().join("state/missiond/recordings/cc/1.cast");
    assert_eq!(
        body,
        std::fs::read_to_string(on_disk).expect("the run's file")
    );
    let ro = daemon.read_only_token.clone();
    let (status, list) = daemon.http("GET", "/api/slots/cc/runs", Some(&ro), None);
    assert_eq!(status, 200, "{list}");
    let list: Vec<RunSummary> = parse(&list);
    assert_eq!(list.len(), 1);
    let (status, body) = daemon.http("GET", "/api/slots/cc/runs/1.cast", Some(&ro), None);
    assert_eq!((status, body.len()), (200, text.len()));
    let (status, _) = daemon.http("GET", "/api/slots/cc/runs/1.cast", None, None);
    assert_eq!(status, 401);
    let (status, _) = daemon.http(
        "GET",
        "/api/slots/cc/runs/2.cast",
        Some(&daemon.token),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = daemon.http(
        "GET",
        "/api/slots/cc/runs/x.cast",
        Some(&daemon.token),
        None,
    );
    assert_eq!(status, 400);

    // `rec play --from answer` draws the same final screen (speed and idle cap keep it short).
    let out = daemon
        .command(&["rec", "play", "cc", "--from", "answer", "--speed", "100"])
        .output()
        .expect("rec play");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut played = vt100::Parser::new(40, 120, 0);
    played.process(&out.stdout);
    let resume = screen
        .text
        .lines()
        .find(|l| l.contains("--resume"))
        .expect("a resume line");
    assert!(
        played.screen().contents().contains(resume.trim()),
        "{}",
        played.screen().contents()
    );
}

fn tiny_daemon(record: &str) -> Daemon {
    Daemon::start_with(DaemonOptions {
        extra_toml: format!("[record]\n{record}\n"),
        ..DaemonOptions::default()
    })
}

/// Creates slot `id` running `sh -c script` (no restart) and waits for its first run to end.
fn run_once(daemon: &Daemon, id: &str, script: &str, extra: serde_json::Value) {
    let mut spec =
        json!({ "id": id, "command": "sh", "args": ["-c", script], "cols": 80, "rows": 24 });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let (status, body) = daemon.http(
        "POST",
        "/api/slots",
        Some(&daemon.token),
        Some(("application/json", spec.to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{body}");
    daemon.wait_slot(id, "exited", |s| s.status == SlotStatus::Exited);
}

fn run_again(daemon: &Daemon, id: &str) {
    daemon.cli_ok(&["start", id]);
    daemon.wait_slot(id, "exited", |s| {
        s.status == SlotStatus::Exited && s.pid.is_none()
    });
}

fn kept(daemon: &Daemon, id: &str) -> Vec<u64> {
    runs(daemon, id).iter().map(|r| r.run).collect()
}

#[test]
fn tiny_limits_remove_the_oldest_runs_per_slot_and_in_total() {
    let daemon = tiny_daemon("max_slot_bytes = 6000\nmax_total_bytes = 8000");
    // About 4.4 KB per run of a, 2.4 KB per run of b.
    let a = "printf '%04000d\\n' 0";
    let b = "printf '%02000d\\n' 0";
    run_once(&daemon, "a", a, json!({}));
    wait_finished(&daemon, "a", 1);
    run_again(&daemon, "a");
    wait_finished(&daemon, "a", 2);
    // Two runs of a are over the slot's 6000 bytes: run 1 went.
    poll(STEP, || (kept(&daemon, "a") == [2]).then_some(()))
        .unwrap_or_else(|| panic!("{:?}", runs(&daemon, "a")));
    run_again(&daemon, "a");
    wait_finished(&daemon, "a", 3);
    poll(STEP, || (kept(&daemon, "a") == [3]).then_some(()))
        .unwrap_or_else(|| panic!("{:?}", runs(&daemon, "a")));

    run_once(&daemon, "b", b, json!({}));
    wait_finished(&daemon, "b", 1);
    assert_eq!(
        kept(&daemon, "a"),
        [3],
        "a and b together are within 8000 bytes"
    );
    run_again(&daemon, "b");
    wait_finished(&daemon, "b", 2);
    // a's run 3 + b's two runs are over the total: the oldest of all, a's run 3, went.
    poll(STEP, || (kept(&daemon, "a").is_empty()).then_some(()))
        .unwrap_or_else(|| panic!("{:?}", runs(&daemon, "a")));
    assert_eq!(kept(&daemon, "b"), [1, 2]);

    let usage: RecordingUsage = parse(&daemon.cli_ok(&["--json", "rec", "ls"]));
    assert_eq!(usage.runs, 2);
    assert!(usage.total_bytes <= 8000, "{usage:?}");
    assert_eq!(
        (usage.limits.max_slot_bytes, usage.limits.max_total_bytes),
        (6000, 8000)
    );
    let (status, body) = daemon.http("GET", "/api/recordings", Some(&daemon.token), None);
    assert_eq!(status, 200);
    assert_eq!(parse::<RecordingUsage>(&body), usage);
    let table = daemon.cli_ok(&["rec", "ls"]);
    assert!(table.contains("limits:") && table.contains("b"), "{table}");

    // record = false: the slot runs, nothing is recorded.
    run_once(
        &daemon,
        "quiet",
        "echo unrecorded",
        json!({ "record": false }),
    );
    assert!(daemon.screen("quiet").text.contains("unrecorded"));
    assert!(kept(&daemon, "quiet").is_empty());
    let err = daemon.cli_err(&["rec", "play", "quiet"]);
    assert!(err.contains("no recorded runs"), "{err}");
}

#[test]
fn a_run_alone_over_the_slot_limit_stops_recording_output_and_says_so() {
    let daemon = tiny_daemon("max_slot_bytes = 20000");
    run_once(
        &daemon,
        "big",
        "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo the-end",
        json!({}),
    );
    daemon.wait_screen("big", "the end", |s| s.contains("the-end"));
    let run = wait_finished(&daemon, "big", 1);
    assert!(run.bytes < 20000 + 64 * 1024, "{run:?}");
    let (_, cast) = export(&daemon, "big", 1);
    let labels: Vec<String> = markers(&cast).into_iter().map(|(_, l)| l).collect();
    assert!(labels.iter().any(|l| l == "rec:limit"), "{labels:?}");
    // The exit is still marked after the limit.
    assert!(
        labels.last().is_some_and(|l| l.starts_with("exit:code 0")),
        "{labels:?}"
    );
}

#[test]
fn daemon_wide_record_false_records_nothing() {
    let daemon = tiny_daemon("enabled = false");
    run_once(&daemon, "s", "echo hi", json!({}));
    assert!(kept(&daemon, "s").is_empty());
    // A slot may still ask for it.
    run_once(&daemon, "t", "echo hi", json!({ "record": true }));
    wait_finished(&daemon, "t", 1);
}

/// Claude Code's task tools in a recorded slot: the task's start is a `task:started` marker.
#[test]
fn a_claude_code_task_start_is_a_marker() {
    let subject = "Design the API";
    let stand_in = StandIn::start(vec![
        Turn::task_create(subject, "Design it", "Designing the API"),
        Turn::task_update("1", "in_progress"),
        Turn::text("Task started."),
    ]);
    // A daemon process of its own: Claude Code must not inherit the test runner's environment.
    let daemon = Daemon::start();
    let env = ClaudeEnvBuilder::new(stand_in.base_url())
        .claude_dir(daemon.dir().join("claude"))
        .build();
    let (command, args, env_vars, cwd) = env.launch();
    let spec = json!({
        "id": "cc", "command": command, "args": args, "cwd": cwd, "env": env_vars,
        "profile": "claude-code", "cols": 120, "rows": 40,
    });
    let (status, body) = daemon.http(
        "POST",
        "/api/slots",
        Some(&daemon.token),
        Some(("application/json", spec.to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{body}");
    daemon.cli_ok(&[
        "--json",
        "wait",
        "cc",
        "--state",
        "idle",
        "--timeout",
        STEP_SECS,
    ]);
    daemon.cli_ok(&[
        "--json",
        "prompt",
        "cc",
        "plan the work",
        "--wait",
        "--timeout",
        STEP_SECS,
    ]);
    let label = format!("task:started {subject}");
    poll(STEP, || {
        let (_, cast) = export(&daemon, "cc", 1);
        markers(&cast)
            .iter()
            .any(|(_, l)| *l == label)
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "no {label:?} marker: {:#?}\n{}",
            markers(&export(&daemon, "cc", 1).1),
            daemon.log()
        )
    });
}
