//! Every labelled mark of every recorded Claude Code session is classified right by the
//! daemon's own pipeline: a real slot replays the recording byte for byte (pausing at each
//! mark), and the state is read back over REST, exactly as a client sees it.

mod support;

use missiond_core::protocol::{DialogKind, SemanticState, SlotInfo};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::daemon::{Daemon, STEP};

#[derive(Deserialize)]
struct Recording {
    cols: u16,
    rows: u16,
    marks: Vec<Mark>,
}

#[derive(Deserialize)]
struct Mark {
    offset: usize,
    state: String,
    note: String,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../missiond-core/tests/fixtures")
}

/// A `thinking` label accepts any state of the busy family.
fn matches(label: &str, state: SemanticState) -> bool {
    match label {
        "thinking" => state.is_busy(),
        other => SemanticState::parse(other) == Some(state),
    }
}

/// The classifier holds busy -> idle for about a second: a state must still hold after that.
const SETTLE: Duration = Duration::from_millis(1600);

fn replay(name: &str, check_dialog: impl Fn(usize, &SlotInfo)) {
    let recording: Recording = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(format!("{name}.json"))).expect("fixture json"),
    )
    .expect("fixture format");
    let daemon = Daemon::in_process();
    let bin = fixtures().join(format!("{name}.bin"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/replay.py");
    let mut args = vec![script.display().to_string(), bin.display().to_string()];
    args.extend(recording.marks.iter().map(|m| m.offset.to_string()));
    let spec = serde_json::json!({
        "id": "replay", "command": "python3", "args": args, "cwd": "/tmp",
        "cols": recording.cols, "rows": recording.rows, "profile": "claude-code",
    });
    let (status, body) = daemon.http(
        "POST",
        "/api/slots",
        Some(&daemon.token),
        Some(("application/json", spec.to_string().into_bytes())),
    );
    assert_eq!(status, 201, "{body}");

    for (i, mark) in recording.marks.iter().enumerate() {
        let what = format!("{name} mark {i} ({}: {})", mark.state, mark.note);
        let deadline = Instant::now() + STEP;
        // Reached, and still so once any debounce has run out (a stability window, not a
        // synchronisation: the state was already reached).
        let info = loop {
            daemon.wait_slot("replay", &what, |s| matches(&mark.state, s.state));
            std::thread::sleep(SETTLE);
            let again = daemon.slot("replay");
            if matches(&mark.state, again.state) {
                break again;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: state flips to {:?}",
                again.state
            );
        };
        check_dialog(i, &info);
        let (status, body) = daemon.http(
            "POST",
            "/api/slots/replay/input",
            Some(&daemon.token),
            Some(("application/json", br#"{"data":"\u001d"}"#.to_vec())),
        );
        assert_eq!(status, 204, "{body}");
    }
}

fn dialog(info: &SlotInfo) -> &missiond_core::protocol::Dialog {
    info.state_detail
        .dialog
        .as_ref()
        .unwrap_or_else(|| panic!("no dialog in {info:?}"))
}

#[test]
fn startup_dialogs() {
    replay("startup_dialogs-120x40", |i, info| match i {
        0 => {
            let d = dialog(info);
            assert_eq!(d.kind, DialogKind::Trust, "{d:?}");
            assert!(d.options.len() >= 2, "{d:?}");
        }
        1 => assert_eq!(dialog(info).kind, DialogKind::ApiKey),
        _ => assert!(info.state_detail.dialog.is_none()),
    });
}

#[test]
fn bash_permission() {
    replay("bash_permission-120x40", |i, info| {
        if i == 1 {
            let d = dialog(info);
            assert_eq!(d.kind, DialogKind::Permission);
            assert_eq!(d.question, "Do you want to proceed?");
            assert!(d.body.contains("touch /tmp/ccproj/flag.txt"), "{d:?}");
            assert_eq!(d.options.first().map(|o| o.label.as_str()), Some("Yes"));
            assert_eq!(d.options.last().map(|o| o.label.as_str()), Some("No"));
            assert!(d.options[0].selected);
        }
    });
}

#[test]
fn write_permission() {
    replay("write_permission-120x40", |i, info| {
        if i == 1 {
            let d = dialog(info);
            assert_eq!(d.kind, DialogKind::Permission);
            assert!(d.question.starts_with("Do you want to"), "{d:?}");
        }
    });
}

#[test]
fn prompt_cycle() {
    replay("prompt_cycle-120x40", |_, _| {});
}

#[test]
fn interrupt() {
    replay("interrupt-120x40", |_, _| {});
}

#[test]
fn slash_menu() {
    replay("slash_menu-120x40", |_, _| {});
}

#[test]
fn tasks() {
    replay("tasks-120x40", |_, _| {});
}
