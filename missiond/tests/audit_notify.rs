//! The audit trail and notifications out (issue 15), against the real daemon: every action
//! on a slot lands in `audit.jsonl` with who did it before it is acknowledged, and `[[notify]]`
//! receivers (a real local HTTP server, a real command) hear about dialogs, exits and tests
//! without a slow or dead receiver slowing anything else down.

mod support;

use futures_util::{SinkExt, StreamExt};
use missiond_core::protocol::audit::{AuditAction, AuditEntry, ClientKind, TokenKind};
use missiond_core::protocol::{Meaning, SemanticState, SlotInfo};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::daemon::{poll, Daemon, DaemonOptions, STEP};
use support::receiver::{Mode, Receiver};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The browser viewer's User-Agent, as a test sends it.
const BROWSER_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) missiond-test";

fn dialog_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/tests/fixtures/permission_dialog.py")
}

/// `[[slots]]` for the recorded Claude Code permission dialog.
fn dialog_slot(daemon_dir: &std::path::Path) -> String {
    format!(
        "[[slots]]\nid = \"dialog\"\ncommand = \"python3\"\nargs = [{:?}, {:?}]\nprofile = \"claude-code\"\n",
        dialog_fixture().display().to_string(),
        daemon_dir.join("dialog-input.bin").display().to_string(),
    )
}

/// One request with any headers: `(status, body)`.
fn request(
    daemon: &Daemon,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, String) {
    let body = body.map(|b| ("application/json", b.to_string().into_bytes()));
    support::daemon::http_with_headers(
        &daemon.url,
        method,
        path,
        Some(&daemon.token),
        headers,
        body,
    )
}

fn audit(daemon: &Daemon, args: &[&str]) -> Vec<AuditEntry> {
    let mut all = vec!["--json", "audit"];
    all.extend_from_slice(args);
    let out = daemon.cli_ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("audit --json: {e}\n{out}"))
}

fn audit_file(daemon: &Daemon) -> PathBuf {
    daemon.dir().join("state/missiond/audit.jsonl")
}

/// The entries of `audit.jsonl` as they are on disk now.
fn file_entries(daemon: &Daemon) -> Vec<AuditEntry> {
    std::fs::read_to_string(audit_file(daemon))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn every_action_is_recorded_with_who_did_it_before_it_is_acknowledged() {
    let daemon = Daemon::in_process();
    daemon.cli_ok(&["launch", "sh1", "--", "cat"]);
    // Already on disk when the CLI got its answer.
    let launched = file_entries(&daemon);
    assert_eq!(launched.len(), 1, "{launched:?}");
    assert_eq!(launched[0].action, AuditAction::Launch);
    assert_eq!(
        launched[0].command.as_deref(),
        Some(&["cat".to_string()][..])
    );

    daemon.cli_ok(&["send", "sh1", "--enter", "echo rm -rf /tmp/x"]);
    assert_eq!(file_entries(&daemon).len(), 2);
    // A script with no client header, and binary input that is not one printable line.
    let (status, body) = request(
        &daemon,
        "POST",
        "/api/slots/sh1/input",
        &[("user-agent", "my-script/1.0")],
        // (Not Ctrl-C: that would end `cat` before the viewer below attaches.)
        Some(json!({"data": "\u{1b}[A\u{1b}[B"})),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = request(
        &daemon,
        "POST",
        "/api/slots/sh1/resize",
        &[],
        Some(json!({"cols": 90, "rows": 30})),
    );
    assert_eq!(status, 200, "{body}");

    // A viewer in a browser: the page's origin, a browser's User-Agent, one key at a time.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let url = format!(
            "ws://{}/pty/sh1?token={}",
            daemon.url.trim_start_matches("http://"),
            daemon.token
        );
        let mut req = url.into_client_request().expect("request");
        req.headers_mut()
            .insert("origin", daemon.url.parse().expect("origin"));
        req.headers_mut()
            .insert("user-agent", BROWSER_UA.parse().expect("ua"));
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("attach");
        for key in ["y", "\r"] {
            let msg = json!({"type": "input", "data": key}).to_string();
            ws.send(Message::text(msg)).await.expect("send");
        }
        // The echo of the typed line proves the input reached the program.
        let deadline = Instant::now() + STEP;
        let mut seen = String::new();
        while !seen.contains("y\r\ny") && Instant::now() < deadline {
            match tokio::time::timeout(STEP, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => seen.push_str(t.as_str()),
                Ok(Some(Ok(Message::Binary(b)))) => seen.push_str(&String::from_utf8_lossy(&b)),
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        let _ = ws.close(None).await;
    });

    daemon.cli_ok(&["kill", "sh1"]);
    daemon.cli_ok(&["rm", "sh1"]);

    let entries = audit(&daemon, &["--slot", "sh1"]);
    let actions: Vec<AuditAction> = entries.iter().map(|e| e.action).collect();
    use AuditAction::*;
    assert_eq!(
        actions,
        vec![Launch, Input, Input, Resize, Input, Input, Kill, Remove],
        "{entries:#?}"
    );
    let cli = &entries[1];
    assert_eq!(cli.actor.client, ClientKind::Cli);
    assert_eq!(cli.actor.token, TokenKind::Full);
    assert!(
        cli.actor
            .remote
            .as_deref()
            .is_some_and(|r| r.starts_with("127.0.0.1:")),
        "{cli:?}"
    );
    assert!(
        cli.actor
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with("missiond-cli/")),
        "{cli:?}"
    );
    assert_eq!(cli.text.as_deref(), Some("echo rm -rf /tmp/x\r"));
    assert_eq!(cli.bytes, Some(19));
    let script = &entries[2];
    assert_eq!(script.actor.client, ClientKind::Rest);
    assert_eq!(script.actor.user_agent.as_deref(), Some("my-script/1.0"));
    assert_eq!((script.bytes, script.text.as_deref()), (Some(6), None));
    assert_eq!((entries[3].cols, entries[3].rows), (Some(90), Some(30)));
    for typed in &entries[4..6] {
        assert_eq!(typed.actor.client, ClientKind::Viewer, "{typed:?}");
        assert_eq!(typed.actor.user_agent.as_deref(), Some(BROWSER_UA));
    }
    assert_eq!(entries[4].text.as_deref(), Some("y"));
    assert_eq!(entries[5].text.as_deref(), Some("\r"));
    assert!(entries.windows(2).all(|w| w[0].time <= w[1].time));

    // The file is private and holds exactly what the API returns.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(audit_file(&daemon))
        .expect("audit.jsonl")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(file_entries(&daemon), entries);

    // `since` and `slot` filter; the table names the actor.
    let since = entries[6].time;
    let (status, body) = request(
        &daemon,
        "GET",
        &format!("/api/audit?slot=sh1&since={since}"),
        &[],
        None,
    );
    assert_eq!(status, 200);
    let late: Vec<AuditEntry> = serde_json::from_str(&body).expect("entries");
    assert_eq!(
        late.iter().map(|e| e.action).collect::<Vec<_>>(),
        vec![Kill, Remove]
    );
    let table = daemon.cli_ok(&["audit"]);
    assert!(table.contains("viewer 127.0.0.1:"), "{table}");
    assert!(table.contains("\"echo rm -rf /tmp/x\\r\""), "{table}");
    let (status, _) = request(&daemon, "GET", "/api/audit?slot=a/b", &[], None);
    assert_eq!(status, 400);
}

#[test]
fn an_action_whose_record_cannot_be_written_is_refused_not_done() {
    // Every append past the first rotates; the rotated name is taken by a directory, so the
    // rotation (and with it the append) fails.
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: "[audit]\nmax_bytes = 1\nkeep_files = 1\n".into(),
        ..Default::default()
    });
    daemon.cli_ok(&["launch", "kept", "--", "cat"]);
    let pid = daemon.slot("kept").pid.expect("pid");
    std::fs::create_dir_all(daemon.dir().join("state/missiond/audit.jsonl.1/in-the-way"))
        .expect("block the rotation");
    let err = daemon.cli_err(&["kill", "kept"]);
    assert!(err.contains("audit trail cannot be written"), "{err}");
    let slot = daemon.slot("kept");
    assert_eq!(
        slot.pid,
        Some(pid),
        "the kill was not carried out: {slot:?}"
    );
    assert!(support::daemon::alive(pid));
    let (status, body) = request(
        &daemon,
        "POST",
        "/api/slots/kept/input",
        &[],
        Some(json!({"data": "x"})),
    );
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("audit_failed"), "{body}");
}

#[test]
fn an_answer_from_the_viewer_is_recorded_with_the_option_and_the_dialog() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: dialog_slot(dir.path()),
        ..Default::default()
    });
    daemon.wait_slot("dialog", "confirming", |s| {
        s.state == SemanticState::Confirming
    });
    // What the viewer's fetch sends when an option button is tapped.
    let (status, body) = request(
        &daemon,
        "POST",
        "/api/slots/dialog/confirm",
        &[
            ("x-missiond-client", "viewer"),
            ("origin", daemon.url.as_str()),
            ("user-agent", BROWSER_UA),
        ],
        Some(json!({"option": 1})),
    );
    assert_eq!(status, 200, "{body}");
    let entries = audit(&daemon, &["--slot", "dialog"]);
    let confirm = entries
        .iter()
        .find(|e| e.action == AuditAction::Confirm)
        .unwrap_or_else(|| panic!("no confirm entry: {entries:#?}"));
    assert_eq!(confirm.actor.client, ClientKind::Viewer);
    assert_eq!(confirm.actor.user_agent.as_deref(), Some(BROWSER_UA));
    let option = confirm.option.as_ref().expect("option");
    assert_eq!((option.n, option.label.as_str()), (1, "Yes"));
    let dialog = confirm.dialog.as_ref().expect("dialog");
    assert!(
        dialog.question.contains("Do you want to proceed?"),
        "{dialog:?}"
    );
    assert!(!dialog.body.is_empty(), "{dialog:?}");
    // The config slot was launched by the daemon itself.
    assert_eq!(entries[0].action, AuditAction::Launch);
    assert_eq!(entries[0].actor.client, ClientKind::Config);
    let table = daemon.cli_ok(&["audit", "--slot", "dialog"]);
    assert!(table.contains("1. Yes"), "{table}");
    assert!(table.contains("viewer 127.0.0.1:"), "{table}");
}

#[test]
fn an_answer_by_meaning_is_recorded_with_the_meaning_and_the_option_it_chose() {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: dialog_slot(dir.path()),
        ..Default::default()
    });
    daemon.wait_slot("dialog", "confirming", |s| {
        s.state == SemanticState::Confirming
    });
    daemon.cli_ok(&["confirm", "dialog", "--no"]);
    let entries = audit(&daemon, &["--slot", "dialog"]);
    let confirm = entries
        .iter()
        .find(|e| e.action == AuditAction::Confirm)
        .unwrap_or_else(|| panic!("no confirm entry: {entries:#?}"));
    assert_eq!(confirm.actor.client, ClientKind::Cli);
    assert_eq!(confirm.answer, Some(Meaning::No));
    let option = confirm.option.as_ref().expect("the option that means no");
    assert_eq!(
        (option.label.as_str(), option.meaning),
        ("No", Some(Meaning::No))
    );
    let table = daemon.cli_ok(&["audit", "--slot", "dialog"]);
    assert!(
        table.contains(&format!("{}. No (no) to", option.n)),
        "{table}"
    );
}

#[test]
fn audit_follow_prints_entries_as_they_are_written() {
    let daemon = Daemon::in_process();
    let mut follow = daemon
        .command(&["--json", "audit", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("audit --follow");
    let stdout = follow.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    daemon.cli_ok(&["launch", "f1", "--", "cat"]);
    daemon.cli_ok(&["kill", "f1"]);
    let mut actions = Vec::new();
    let deadline = Instant::now() + STEP;
    while actions.len() < 2 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let entry: AuditEntry = serde_json::from_str(&line).expect("one entry per line");
            actions.push(entry.action);
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(actions, vec![AuditAction::Launch, AuditAction::Kill]);
}

#[test]
fn a_dialog_and_an_exit_reach_an_http_receiver_and_a_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start(Mode::Answer);
    let out_file = dir.path().join("events.jsonl");
    let extra = format!(
        "{}\n[[notify]]\nurl = {:?}\non = [\"confirming\", \"exited\"]\nslots = [\"dialog\"]\nviewer_url = \"http://phone.example:9120/\"\n\n\
         [[notify]]\ncommand = {:?}\non = [\"exited\"]\n",
        dialog_slot(dir.path()),
        receiver.url,
        format!("cat >> {} && echo >> {}", out_file.display(), out_file.display()),
    );
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: extra,
        ..Default::default()
    });
    let info = daemon.wait_slot("dialog", "confirming", |s| {
        s.state == SemanticState::Confirming
    });
    let got = receiver.wait(1, STEP);
    let event = got[0].json();
    assert_eq!(event["event"], "confirming", "{event}");
    assert_eq!(event["slot"], "dialog");
    assert_eq!(event["state"], "confirming");
    assert_eq!(event["link"], "http://phone.example:9120/#slot=dialog");
    assert!(
        event["dialog"]["question"]
            .as_str()
            .unwrap_or("")
            .contains("Do you want to proceed?"),
        "{event}"
    );
    assert_eq!(event["dialog"]["options"][0]["label"], "Yes");
    assert!(event["message"]
        .as_str()
        .unwrap_or("")
        .starts_with("dialog needs you"));
    // Within 2 s of the state change (the slot's own clock says when it entered confirming).
    let sent_at = event["time"].as_u64().expect("time");
    assert!(
        sent_at.saturating_sub(info.state_since) < 2000,
        "event at {sent_at}, confirming since {}",
        info.state_since
    );

    daemon.cli_ok(&["kill", "dialog"]);
    let got = receiver.wait(2, STEP);
    assert_eq!(got[1].json()["event"], "exited");
    let lines = poll(STEP, || {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        (!text.trim().is_empty()).then_some(text)
    })
    .expect("the command never wrote the event");
    let from_command: Value = serde_json::from_str(lines.trim()).expect("event JSON on stdin");
    assert_eq!(from_command["event"], "exited");
    assert_eq!(from_command["slot"], "dialog");
    // Only what was asked for: no "confirming" for the command, one event per change.
    assert_eq!(receiver.received().len(), 2);
}

#[test]
fn notify_test_sends_a_sample_in_each_format_and_reports_failures() {
    let json_rx = Receiver::start(Mode::Answer);
    let ntfy_rx = Receiver::start(Mode::Answer);
    let slack_rx = Receiver::start(Mode::Answer);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}/", closed.local_addr().expect("addr"));
    drop(closed);
    let extra = format!(
        "[[notify]]\nurl = {:?}\n\n[[notify]]\nurl = {:?}\nformat = \"ntfy\"\n\n[[notify]]\nurl = {:?}\nformat = \"slack\"\n\n\
         [[notify]]\nurl = {dead:?}\nretries = 0\n\n[[notify]]\ncommand = \"grep -q needs\"\n",
        json_rx.url, ntfy_rx.url, slack_rx.url
    );
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: extra,
        ..Default::default()
    });
    let out = daemon.cli(&["notify", "test", "--slot", "agent1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "one receiver is dead: {stdout}");
    assert_eq!(stdout.matches("ok ").count(), 4, "{stdout}");
    assert!(stdout.contains(&format!("FAILED  {dead}")), "{stdout}");

    let event = json_rx.wait(1, STEP)[0].json();
    assert_eq!(event["test"], true);
    assert_eq!(event["slot"], "agent1");
    assert_eq!(event["dialog"]["options"][2]["label"], "No");
    assert!(
        event["link"]
            .as_str()
            .unwrap_or("")
            .ends_with("/#slot=agent1"),
        "{event}"
    );
    let ntfy = &ntfy_rx.wait(1, STEP)[0];
    assert_eq!(ntfy.header("title"), Some("missiond: agent1 confirming"));
    assert_eq!(ntfy.header("priority"), Some("high"));
    assert!(ntfy
        .header("click")
        .is_some_and(|c| c.ends_with("#slot=agent1")));
    assert!(ntfy.body.starts_with("agent1 needs you"), "{}", ntfy.body);
    assert!(ntfy.body.contains("\n1. Yes"), "{}", ntfy.body);
    let slack = slack_rx.wait(1, STEP)[0].json();
    let text = slack["text"].as_str().unwrap_or("");
    assert!(
        text.starts_with("agent1 needs you") && text.contains("|Open in the viewer>"),
        "{slack}"
    );
}

#[test]
fn a_dead_receiver_does_not_slow_rest_or_the_terminal() {
    let dead = Receiver::start(Mode::Hang);
    let extra = format!(
        "[[notify]]\nurl = {:?}\non = [\"confirming\", \"idle\", \"error\", \"exited\"]\nmin_busy_secs = 0\ntimeout_secs = 30\nretries = 3\n",
        dead.url
    );
    let daemon = Daemon::start_with(DaemonOptions {
        extra_toml: extra,
        ..Default::default()
    });
    // A slot that exits again and again: a steady stream of events for the dead receiver.
    daemon.cli_ok(&[
        "launch",
        "flappy",
        "--restart",
        "always",
        "--",
        "sh",
        "-c",
        "exit 3",
    ]);
    daemon.cli_ok(&["launch", "echo", "--", "cat"]);
    dead.wait_accepted(1, STEP);
    let flaps = poll(STEP, || {
        let s = daemon.slot("flappy");
        (s.restarts >= 3).then_some(s.restarts)
    })
    .expect("flappy restarts");
    assert!(flaps >= 3);

    // REST and /pty answer promptly while the receiver holds its connection.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (rest_max, echo_max) = rt.block_on(async {
        let client = reqwest::Client::new();
        let mut rest_max = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            let resp = client
                .get(format!("{}/api/slots", daemon.url))
                .bearer_auth(&daemon.token)
                .send()
                .await
                .expect("GET /api/slots");
            let _: Vec<SlotInfo> = resp.json().await.expect("slots");
            rest_max = rest_max.max(t.elapsed());
        }
        let url = format!(
            "ws://{}/pty/echo?token={}&binary=1",
            daemon.url.trim_start_matches("http://"),
            daemon.token
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("attach");
        let mut echo_max = Duration::ZERO;
        for i in 0..10 {
            let marker = format!("m{i}x");
            let t = Instant::now();
            ws.send(Message::text(
                json!({"type": "input", "data": marker}).to_string(),
            ))
            .await
            .expect("send");
            let mut seen = String::new();
            while !seen.contains(&marker) {
                match tokio::time::timeout(STEP, ws.next()).await {
                    Ok(Some(Ok(Message::Binary(b)))) => seen.push_str(&String::from_utf8_lossy(&b)),
                    Ok(Some(Ok(Message::Text(t)))) => seen.push_str(t.as_str()),
                    Ok(Some(Ok(_))) => {}
                    other => panic!("no echo: {other:?}"),
                }
            }
            echo_max = echo_max.max(t.elapsed());
        }
        (rest_max, echo_max)
    });
    eprintln!(
        "with a dead receiver: slowest GET /api/slots {rest_max:?}, slowest /pty echo {echo_max:?}"
    );
    assert!(
        rest_max < Duration::from_millis(500),
        "REST took {rest_max:?}"
    );
    assert!(
        echo_max < Duration::from_millis(500),
        "echo took {echo_max:?}"
    );
    // The daemon said the receiver is failing at most once (the first attempt is still waiting
    // for its 30 s timeout, so nothing yet), and never crashed.
    assert!(
        daemon.log().matches("notify http://").count() <= 1,
        "{}",
        daemon.log()
    );
    let (status, _) = request(&daemon, "GET", "/health", &[], None);
    assert_eq!(status, 200);
}
