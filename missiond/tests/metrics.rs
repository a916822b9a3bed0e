//! `GET /metrics` against the real daemon: the token is required, the text parses as the
//! Prometheus format, and the figures follow what really happened (bytes a program wrote,
//! a dialog answered, slots by state).

mod support;

use std::collections::HashMap;
use std::path::Path;

use missiond_core::protocol::SemanticState;
use support::daemon::{poll, Daemon, STEP};

/// Every sample of a scrape: `name{labels}` -> value. Panics on a line that is not the format.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number in {line:?}"));
        assert!(
            key.chars().next().is_some_and(|c| c.is_ascii_alphabetic()),
            "bad name in {line:?}"
        );
        samples.insert(key.to_string(), value);
    }
    samples
}

fn scrape(d: &Daemon) -> HashMap<String, f64> {
    let (status, body) = d.http("GET", "/metrics", Some(&d.token), None);
    assert_eq!(status, 200, "{body}");
    parse(&body)
}

#[test]
fn metrics_need_the_token_and_count_what_happened() {
    let d = Daemon::in_process();
    let (status, _) = d.http("GET", "/metrics", None, None);
    assert_eq!(status, 401, "metrics without a token");
    let (status, _) = d.http("GET", "/metrics", Some("wrong"), None);
    assert_eq!(status, 401, "metrics with a wrong token");

    let before = scrape(&d);
    assert_eq!(before["missiond_slots{status=\"running\"}"], 0.0);
    assert!(before["process_resident_memory_bytes"] > 1e6, "{before:?}");
    assert!(before.contains_key("process_cpu_seconds_total"));

    // A program that writes 100 000 bytes: the read counter grows by at least that.
    d.cli_ok(&[
        "launch",
        "writer",
        "--",
        "python3",
        "-c",
        "import sys,time; sys.stdout.write('x'*100000); sys.stdout.flush(); time.sleep(600)",
    ]);
    let after = poll(STEP, || {
        let m = scrape(&d);
        let read = m["missiond_pty_read_bytes_total"] - before["missiond_pty_read_bytes_total"];
        (read >= 100_000.0).then_some(m)
    })
    .expect("the program's output is counted");
    assert_eq!(after["missiond_slots{status=\"running\"}"], 1.0);

    // A dialog answered through confirm is counted, and slots are counted by state.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dialog.py");
    let dir = tempfile::tempdir().expect("temp dir");
    let record = dir.path().join("record.txt");
    d.cli_ok(&[
        "launch",
        "dlg",
        "--profile",
        "claude-code",
        "--",
        "python3",
        &script.to_string_lossy(),
        &record.to_string_lossy(),
        "arrows",
        "yes-always-no",
    ]);
    d.wait_slot("dlg", "the dialog", |s| {
        s.state == SemanticState::Confirming
    });
    let asking = scrape(&d);
    assert_eq!(asking["missiond_slots_by_state{state=\"confirming\"}"], 1.0);
    assert_eq!(asking["missiond_dialogs_answered_total"], 0.0);
    d.cli_ok(&["confirm", "dlg", "--yes"]);
    let answered = scrape(&d);
    assert_eq!(answered["missiond_dialogs_answered_total"], 1.0);
    assert_eq!(answered["missiond_slots{status=\"running\"}"], 2.0);
}
